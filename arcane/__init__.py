"""The Arcane Codex server. `arcane:app` is the ASGI app served by `hypercorn arcane:app`."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["app", "create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    from arcane.runtime import create_app as factory

    return factory(*args, **kwargs)


class _App:
    """The ASGI app, built from the environment on its first call (hypercorn's lifespan startup).

    Importing the package therefore opens no database and writes no key file.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            try:
                self._app = create_app()
            except ValueError as error:  # a setting that cannot be served: say so, and do not start
                if scope["type"] != "lifespan":
                    raise
                await _refuse_to_start(str(error), receive, send)
                return
        await self._app(scope, receive, send)


async def _refuse_to_start(reason: str, receive: Any, send: Any) -> None:
    """Fail hypercorn's startup, so it exits instead of serving without the app."""
    logging.getLogger("arcane").critical("not starting: %s", reason)
    if (await receive())["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.failed", "message": reason})


app = _App()
