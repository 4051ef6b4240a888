// Every refusal the client reports is an ArcaneError carrying the contract's code.

// Refusals that no retry can fix: the client stops instead of reconnecting.
export const FATAL_CODES = new Set(["AUTH_REQUIRED", "NOT_IN_GAME", "INVALID_GAME"]);

export class ArcaneError extends Error {
  constructor(code, message, { status = null, event = null } = {}) {
    super(message || code);
    this.name = "ArcaneError";
    this.code = code;
    this.status = status;
    this.event = event;
  }

  get fatal() {
    return FATAL_CODES.has(this.code);
  }

  // `{error: {code, message}}` (an HTTP body or a Socket.IO ack), or `{code, message}`.
  static from(body, extra = {}) {
    const error = body?.error ?? body ?? {};
    return new ArcaneError(error.code ?? "INTERNAL_ERROR", error.message ?? "unknown error", extra);
  }
}

// A transport that could not open or broke: the server may be fine, the path to it is not.
export class TransportError extends Error {
  constructor(transport, message) {
    super(`${transport}: ${message}`);
    this.name = "TransportError";
    this.transport = transport;
  }
}
