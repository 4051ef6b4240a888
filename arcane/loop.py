"""Which event loop the server runs on: uvloop's by default, asyncio's own on request.

`choose()` runs when `arcane:app` is imported: hypercorn loads the app before it makes
its event loop, and makes that loop from the policy set here (arcane/serving/asyncio.py
says why it can be nowhere else). uvloop runs the same code about a fifth faster
(docs/scaling.md). Without uvloop installed (Windows), or with ARCANE_EVENT_LOOP=asyncio,
asyncio's own loop is used.
"""

from __future__ import annotations

import os

from arcane.serving import asyncio as serving_asyncio
from arcane.serving.asyncio import CHOICES, kind, signal_handler

__all__ = ["CHOICES", "choose", "kind", "signal_handler"]


def choose(choice: str | None = None) -> str:
    """Set the policy new event loops come from; answers the loop chosen."""
    raw = choice if choice is not None else os.environ.get("ARCANE_EVENT_LOOP", "")
    choice = raw.strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise ValueError(f"ARCANE_EVENT_LOOP must be one of {', '.join(CHOICES)}, got {raw!r}")
    return serving_asyncio.use(choice)
