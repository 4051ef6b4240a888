// The Arcane Codex browser client: import from here.

export {
  DEFAULT_TRANSPORTS, GameClient, STATES, TRANSPORTS, forgetTransport, rememberedTransport,
} from "./client.js";
export { Api } from "./http.js";
export { ArcaneError, FATAL_CODES, TransportError } from "./errors.js";
export { Backoff, DEFAULT_BACKOFF, backoffDelays } from "./backoff.js";
export { SERVER_EVENTS } from "./transports/events.js";
