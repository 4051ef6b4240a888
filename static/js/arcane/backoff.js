// Reconnection delays: `initialDelay`, times `factor` each try, capped at `maxDelay`, `maxTries` tries.

export const DEFAULT_BACKOFF = Object.freeze({ initialDelay: 1000, factor: 1.5, maxDelay: 10000, maxTries: 10 });

export function backoffOptions(overrides = {}) {
  const options = { ...DEFAULT_BACKOFF };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (!(key in DEFAULT_BACKOFF)) throw new TypeError(`unknown backoff option ${key}`);
    if (value === undefined || value === null) continue;
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`backoff ${key} must be a number >= 0`);
    options[key] = value;
  }
  return Object.freeze(options);
}

// The whole schedule, for display and tests: [1000, 1500, 2250, ...].
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

  // The delay before the next try, or null when every try is spent.
  next() {
    if (this.exhausted) return null;
    return this.#delays[this.#tries++];
  }

  reset() {
    this.#tries = 0;
  }
}
