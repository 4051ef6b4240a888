"""`python -m arcane` (or the `arcane` console script): the operator's command line.

    arcane serve [--bind HOST:PORT] [--backlog N] ...   the server (arcane/serving/runner.py)
    arcane games [--phase P] [--limit N] [--json]       the games, newest first
    arcane show CODE [--json]                           one game: its table and its last events
    arcane export CODE [-o FILE]                        its whole log as JSON Lines, whispers included
    arcane end CODE [--reason TEXT]                     end a stuck game
    arcane check                                        settings, database, Redis, versions, fast paths
    arcane migrate-db SOURCE TARGET                     a SQLite database copied into PostgreSQL
    arcane new-epoch [CODE ...]                         new stream epochs after a restore

Every command but `serve` works on the database of ARCANE_DATABASE (or `--database`), with
the servers running or not. `end` is an action like any other: with Redis configured
(ARCANE_REDIS_URL), the running servers hear of it within seconds (arcane/logwatch.py) and
tell the players; without, the players see it when their page next connects.
`python -m arcane --bind ...` without a command still serves, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

from arcane.config import Settings, described
from arcane.store import Store, connect

COMMANDS = ("serve", "games", "show", "export", "end", "check", "migrate-db", "new-epoch")
LIBRARIES = ("quart", "hypercorn", "python-socketio", "python-engineio", "h11", "wsproto", "aiosqlite",
             "asyncpg", "redis", "prometheus-client")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["serve", *argv]  # `python -m arcane --bind ...`, as before the commands
    if argv[0] == "migrate-db":
        from arcane.migrate import main as migrate_main

        return migrate_main(argv[1:])
    if argv[0] == "new-epoch":
        from arcane.migrate import new_epoch_main

        return new_epoch_main(argv[1:])
    if argv[0] == "serve":
        from arcane.serving.runner import main as serve_main

        return serve_main(argv[1:])
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    if args.database:
        settings = dataclasses.replace(settings, database=_database(args.database))
    try:
        return int(asyncio.run(args.run(args, settings, sys.stdout)))
    except LookupError as missing:
        print(f"arcane {args.command}: {missing.args[0]}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="arcane", description="Run and look after an Arcane Codex server.",
        epilog="Settings come from ARCANE_* environment variables (README, Settings).")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="serve the game (the same as hypercorn arcane:app); serve --help for flags")
    commands.add_parser("migrate-db", help="copy a SQLite database into PostgreSQL; migrate-db --help")
    commands.add_parser("new-epoch", help="new stream epochs after a restore; new-epoch --help")

    def command(name: str, run: Callable[..., Awaitable[int]], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--database", metavar="PATH_OR_URL", help="instead of ARCANE_DATABASE")
        sub.set_defaults(run=run)
        return sub

    games = command("games", list_games, "list the games, newest first")
    games.add_argument("--phase", choices=("lobby", "interrogation", "playing", "finished"), help="only these")
    games.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    games.add_argument("--json", action="store_true", help="one JSON object per line")
    show = command("show", show_game, "one game: phase, turn, trust, players, spectators and its last events")
    show.add_argument("code", metavar="CODE")
    show.add_argument("--json", action="store_true", help="as one JSON object")
    export = command("export", export_game, "a game's whole log as JSON Lines (whispers included, marked)")
    export.add_argument("code", metavar="CODE")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout")
    end = command("end", end_game, "end a stuck game: its players see game_over")
    end.add_argument("code", metavar="CODE")
    end.add_argument("--reason", default="ended by an operator", help="said to the players (default: %(default)s)")
    command("check", check, "check the settings, the database, Redis, library versions and fast paths")
    return top


def _database(raw: str) -> Path | str:
    from arcane.config import is_postgres_url

    return raw if is_postgres_url(raw) else Path(raw)


async def _opened(settings: Settings) -> Store:
    store = connect(settings.database, retention=settings.log_retention)
    await store.open()
    return store


def _code(raw: str) -> str:
    from arcane.game.service import normalize_code

    try:
        return normalize_code(raw)
    except Exception:
        raise LookupError(f"{raw!r} is not a game code (6 letters or digits)") from None


# -- games, show, export ---------------------------------------------------------------------

async def list_games(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from arcane.store.games import list_games as listed

    store = await _opened(settings)
    try:
        rows = await listed(store, phase=args.phase, limit=args.limit)
    finally:
        await store.close()
    if args.json:
        for row in rows:
            print(json.dumps(row), file=out)
        return 0
    print(f"{'CODE':6}  {'PHASE':13}  {'PLAYERS':>7}  {'WATCHING':>8}  {'TURN':>4}  {'TRUST':>5}  CREATED (UTC)", file=out)
    for row in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["created_at"]))
        print(f"{row['code']:6}  {row['phase']:13}  {row['players']:>7}  {row['spectators']:>8}  "
              f"{row['turn_number']:>4}  {row['party_trust']:>5}  {created}", file=out)
    return 0


async def show_game(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from arcane.store.games import load_game, load_log, load_members

    code = _code(args.code)
    store = await _opened(settings)
    try:
        game = await load_game(store, code)
        if game is None:
            raise LookupError(f"no game with code {code}")
        members = await load_members(store, code)
        recent = (await load_log(store, code))[-10:]
    finally:
        await store.close()
    shown = {"code": game.code, "phase": game.phase, "turn_number": game.turn_number,
             "party_trust": game.party_trust, "finished_reason": game.finished_reason, "last_seq": game.last_seq,
             "epoch": game.epoch, "turn_deadline": game.turn_deadline,
             "players": [m.summary() for m in members if m.is_player],
             "spectators": [m.name for m in members if not m.is_player], "last_events": recent}
    if args.json:
        print(json.dumps(shown), file=out)
        return 0
    print(f"game {game.code}: {game.phase}, turn {game.turn_number}, trust {game.party_trust}"
          + (f", ended: {game.finished_reason}" if game.finished_reason else ""), file=out)
    for m in members:
        role = "spectator" if not m.is_player else (m.player_class or "no class yet")
        print(f"  {m.name} ({role}){' host' if m.is_host else ''}  {m.player_id}", file=out)
    print(f"last events (of {game.last_seq}):", file=out)
    for event in recent:
        private = "" if event["audience"] == "room" else f"  [PRIVATE to {event['audience']}]"
        print(f"  {event['seq']:>5}  {event['event']}{private}", file=out)
    return 0


async def export_game(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """One line per logged event, oldest first: seq, event, audience (`room`, or the one player
    a whisper was for, with `private: true`), time and payload."""
    from arcane.store.games import load_game, load_log

    code = _code(args.code)
    store = await _opened(settings)
    try:
        if await load_game(store, code) is None:
            raise LookupError(f"no game with code {code}")
        entries = await load_log(store, code)
    finally:
        await store.close()
    target = args.output.open("w", encoding="utf-8") if args.output else out
    try:
        for entry in entries:
            print(json.dumps({"game_code": code} | entry, ensure_ascii=False), file=target)
    finally:
        if args.output:
            target.close()
    if args.output:
        print(f"{len(entries)} events of game {code} written to {args.output}", file=sys.stderr)
    return 0


async def end_game(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from arcane.game import actions

    code = _code(args.code)
    store = await _opened(settings)
    try:
        ended = await store.run(actions.end_game, (code, "operator", args.reason))
    finally:
        await store.close()
    print(f"game {code} {'ended' if ended else 'was already over'}", file=out)
    return 0


# -- check -----------------------------------------------------------------------------------

async def check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Each line `ok` or `FAIL` with what was found; exit 1 when anything failed."""
    failed = False

    def line(ok: bool, what: str, detail: str) -> None:
        nonlocal failed
        failed = failed or not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {what:12} {detail}", file=out)

    line(True, "settings", f"database {described(settings.database)}, "
         f"redis {settings.redis_url and 'configured' or 'not configured'}, turn timeout {settings.turn_timeout:g} s")
    try:
        store = await asyncio.wait_for(_opened(settings), 10)
        try:
            row = await store.fetchone("SELECT COUNT(*) FROM games")
            line(True, "database", f"{described(settings.database)} answers; {row[0] if row else 0} games")
        finally:
            await store.close()
    except Exception as error:
        line(False, "database", f"{described(settings.database)}: {type(error).__name__}: {error}")
    if settings.redis_url:
        try:
            import redis.asyncio as redis

            client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
            try:
                await asyncio.wait_for(client.ping(), 5)
                line(True, "redis", "answers PING")
            finally:
                await client.aclose()
        except Exception as error:
            line(False, "redis", f"{type(error).__name__}: {error}")
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    line(True, "versions", ", ".join(versions))
    from arcane import serving

    status = serving.configure(settings.fast_paths, compression=settings.websocket_compression)
    line(True, "fast paths", status)
    return 1 if failed else 0

