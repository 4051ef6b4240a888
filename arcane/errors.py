"""The one error type: every refusal a client can see, with its contract code."""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    AUTH_REQUIRED = "AUTH_REQUIRED"
    NOT_IN_GAME = "NOT_IN_GAME"
    NOT_HOST = "NOT_HOST"
    INVALID_GAME = "INVALID_GAME"
    NO_GAME = "NO_GAME"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    GAME_FULL = "GAME_FULL"
    GAME_STARTED = "GAME_STARTED"
    WRONG_PHASE = "WRONG_PHASE"
    ALREADY_CHOSE = "ALREADY_CHOSE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    UNKNOWN_EVENT = "UNKNOWN_EVENT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # Beyond the game's contract: plain HTTP refusals, in the same error body.
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    FORBIDDEN = "FORBIDDEN"  # a cross-site request, a Host not served
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"  # a cookie's request body that is not JSON

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS = {
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.NOT_IN_GAME: 403,
    ErrorCode.NOT_HOST: 403,
    ErrorCode.INVALID_GAME: 404,
    ErrorCode.NO_GAME: 404,
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.GAME_FULL: 409,
    ErrorCode.GAME_STARTED: 409,
    ErrorCode.WRONG_PHASE: 409,
    ErrorCode.ALREADY_CHOSE: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UNKNOWN_EVENT: 400,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
}


class ArcaneError(Exception):
    """A refusal with a contract code; transports turn it into their error shape."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return self.code.status

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message}


def validation(message: str) -> ArcaneError:
    return ArcaneError(ErrorCode.VALIDATION_ERROR, message)
