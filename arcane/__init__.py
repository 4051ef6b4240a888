"""The Arcane Codex server. `arcane:app` is the ASGI app served by `hypercorn arcane:app`."""

from __future__ import annotations

from typing import Any

__all__ = ["app", "create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    from arcane.app import create_app as factory

    return factory(*args, **kwargs)


def __getattr__(name: str) -> Any:
    # Built on first use, so importing the package has no side effects (no database, no key file).
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module 'arcane' has no attribute {name!r}")
