// Reconnection delays: `initialDelay`, times `factor` each try, capped at `maxDelay`, `maxTries` tries.
// Each delay handed out is shortened by up to `jitter` of itself, at random: after a server
// restarts, its thousands of browsers come back spread over the first second or so, not in
// the same millisecond (docs/client.md).

export const DEFAULT_BACKOFF = Object.freeze({ initialDelay: 1000, factor: 1.5, maxDelay: 10000, maxTries: 10, jitter: 0.5 });

export function backoffOptions(overrides = {}) {
  const options = { ...DEFAULT_BACKOFF };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (!(key in DEFAULT_BACKOFF)) throw new TypeError(`unknown backoff option ${key}`);
    if (value === undefined || value === null) continue;
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`backoff ${key} must be a number >= 0`);
    if (key === "jitter" && value > 1) throw new TypeError("backoff jitter must be from 0 to 1");
    options[key] = value;
  }
  return Object.freeze(options);
}

// The whole schedule before jitter, for display and tests: [1000, 1500, 2250, ...].
export function backoffDelays(overrides = {}) {
  const { initialDelay, factor, maxDelay, maxTries } = backoffOptions(overrides);
  const delays = [];
  for (let i = 0; i < maxTries; i++) delays.push(Math.min(initialDelay * factor ** i, maxDelay));
  return delays;
}

export class Backoff {
  #delays;
  #tries = 0;

  constructor(overrides = {}) {
    this.options = backoffOptions(overrides);
    this.#delays = backoffDelays(this.options);
  }

  // How many tries have been handed out since the last reset.
  get tries() {
    return this.#tries;
  }

  get exhausted() {
    return this.#tries >= this.#delays.length;
  }

  // The delay before the next try (jittered), or null when every try is spent.
  next(random = Math.random) {
    if (this.exhausted) return null;
    const delay = this.#delays[this.#tries++];
    return Math.round(delay * (1 - this.options.jitter * random()));
  }

  reset() {
    this.#tries = 0;
  }
}
