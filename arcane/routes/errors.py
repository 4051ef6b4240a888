"""Every refusal over HTTP has the contract's body: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from arcane.errors import ArcaneError, ErrorCode
from arcane.transports import Refusal

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.AUTH_REQUIRED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


def error_response(error: ArcaneError) -> tuple[Response, int]:
    status, headers, body = Refusal(error).http()  # RATE_LIMITED says when to come back
    return Response(body, status=status, headers={n.decode(): v.decode() for n, v in headers}), status


def register(app: Quart) -> None:
    @app.errorhandler(ArcaneError)
    async def arcane_error(error: ArcaneError) -> tuple[Response, int]:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> tuple[Response, int] | HTTPException:
        code = _HTTP_CODES.get(error.code or 500)
        if code is None:
            return error
        response, _ = error_response(ArcaneError(code, error.description or error.name))
        return response, error.code or 500

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ArcaneError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side"))
