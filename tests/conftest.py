from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import LiveServer, test_settings


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    live = LiveServer(test_settings(tmp_path))
    await live.start()
    try:
        yield live
    finally:
        await live.stop()
        live.close()
