"""The operator's side over HTTP: GET /metrics (arcane/metrics.py).

Every route here is refused unless the caller presents ARCANE_ADMIN_TOKEN as `Authorization:
Bearer <token>` (compared in constant time). With no token set, they are off (404, as if
they did not exist), unless ARCANE_ADMIN_LOOPBACK=true lets callers on this machine in
without one: a Prometheus on the same host, an operator over SSH.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address
from quart import Blueprint, Response, request

from arcane.errors import ArcaneError, ErrorCode
from arcane.identity import bearer
from arcane.metrics import CONTENT_TYPE, Metrics
from arcane.routes.common import runtime

blueprint = Blueprint("admin", __name__)


def require_admin() -> None:
    settings = runtime().settings
    token = settings.admin_token
    if token:
        presented = bearer(request.headers.get("authorization", "")) or ""
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise ArcaneError(ErrorCode.AUTH_REQUIRED, "present the admin token: Authorization: Bearer <token>")
        return
    if settings.admin_loopback and _loopback(runtime().limits.address(request.scope)):
        return
    raise ArcaneError(ErrorCode.NOT_FOUND, "no such page")


def _loopback(address: str) -> bool:
    """The caller's own address (through trusted proxies only, arcane/peers.py): a local
    proxy's does not count, the client behind it does."""
    try:
        return ip_address(address).is_loopback
    except ValueError:
        return False


@blueprint.get("/metrics")
async def metrics() -> Response:
    require_admin()
    from quart import current_app

    exposed: Metrics = current_app.extensions["arcane_metrics"]
    return Response(await exposed.exposition(), status=200, headers={"content-type": CONTENT_TYPE,
                                                                     "cache-control": "no-store"})
