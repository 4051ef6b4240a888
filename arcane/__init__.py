"""The Arcane Codex server. `arcane:app` is the ASGI app served by `hypercorn arcane:app`."""

from __future__ import annotations

from typing import Any

from arcane import loop as _loop

__all__ = ["app", "create_app"]

# hypercorn makes its event loop after importing the app, from the policy set here.
EVENT_LOOP = _loop.choose()


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
            self._app = create_app()
        await self._app(scope, receive, send)


app = _App()
