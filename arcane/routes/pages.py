"""The pages players open in a browser."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
async def home() -> Any:
    return await render_template("index.html")
