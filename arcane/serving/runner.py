"""`python -m arcane`: one server process through hypercorn's public API only.

`hypercorn.asyncio.serve` with a shutdown trigger of our own: on SIGINT or SIGTERM the
runtime first ends its SSE streams, long-polls and sockets (`Runtime.begin_shutdown`), then
hypercorn stops, at once. The event loop comes from `asyncio.Runner`'s loop factory:
uvloop's, or asyncio's with `--loop asyncio` or where uvloop is not installed. No event loop
policy, no private name.

`hypercorn arcane:app` serves the same app; there the loop is hypercorn's `--worker-class`
(`-k uvloop`), and shutdown is heard through the worker's shutdown event
(arcane/shutdown.py).

It lives in arcane/serving/ with everything else that imports hypercorn, though it touches
none of its private names: an upgrade of hypercorn is checked here and nowhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hypercorn.asyncio import serve
from hypercorn.config import Config

from arcane.serving.listen import STORM_BACKLOG

if TYPE_CHECKING:
    from arcane.gate import Gate

LOOPS = ("uvloop", "asyncio")
log = logging.getLogger("arcane")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of `choice`'s loops (None: asyncio's own); asyncio's when uvloop is missing."""
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: serving on asyncio's event loop")
            return None
        return uvloop.new_event_loop
    return None


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m arcane",
        description="Serve the Arcane Codex in one process (hypercorn's public API; settings from ARCANE_*).")
    parser.add_argument("--bind", action="append", metavar="HOST:PORT",
                        help="where to listen (repeatable; default 127.0.0.1:8000, or the config file's)")
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help="the event loop (default uvloop)")
    parser.add_argument("--config", metavar="FILE", help="a hypercorn TOML config file (TLS, timeouts, logs)")
    parser.add_argument("--graceful-timeout", type=float, metavar="SECONDS",
                        help="how long requests still running at shutdown may take")
    parser.add_argument("--backlog", type=int, metavar="N", default=None,
                        help=f"the listening socket's backlog (default {STORM_BACKLOG}: a reconnect storm's "
                             "connections wait in it, not in TCP's retries; see arcane/serving/listen.py)")
    settings = parser.add_argument_group(
        "settings", "each ARCANE_* setting as a flag (README, Settings); a flag wins over the environment")
    from arcane.config import Settings

    for name in Settings.__dataclass_fields__:
        settings.add_argument(f"--{name.replace('_', '-')}", dest=f"setting_{name}", metavar="VALUE",
                              help=argparse.SUPPRESS if name in SECRET_FLAGS else f"ARCANE_{name.upper()}")
    return parser.parse_args(argv)


SECRET_FLAGS = {"secret_key", "admin_token"}  # a flag shows in `ps`: these stay in the environment or a file


def settings_from_flags(args: argparse.Namespace) -> dict[str, str]:
    """ARCANE_* variables for the settings given as flags."""
    return {f"ARCANE_{key.removeprefix('setting_').upper()}": value
            for key, value in vars(args).items() if key.startswith("setting_") and value is not None}


def configure(args: argparse.Namespace) -> Config:
    config = Config.from_toml(args.config) if args.config else Config()
    if args.bind:
        config.bind = args.bind
    elif not args.config:
        config.bind = ["127.0.0.1:8000"]
    if args.graceful_timeout is not None:
        config.graceful_timeout = args.graceful_timeout
    if args.backlog is not None:
        config.backlog = args.backlog
    elif not args.config:
        config.backlog = STORM_BACKLOG
    return config


async def run(app: Gate, config: Config) -> None:
    """Serve until SIGINT or SIGTERM; the app's streams end before hypercorn waits on them."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def shutdown_trigger() -> None:
        await stop.wait()
        app.runtime.begin_shutdown()

    await serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    from arcane.runtime import create_app

    args = parse(argv)
    config = configure(args)
    os.environ.update(settings_from_flags(args))
    try:
        app = create_app()
    except ValueError as error:  # a setting that cannot be served
        if not log.handlers:
            logging.basicConfig()
        log.critical("not starting: %s", error)
        return 1
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(run(app, config))
    return 0
