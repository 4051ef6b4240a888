// A small event emitter: a handler that throws is reported, never breaks the others.

export class Emitter {
  #handlers = new Map();

  on(name, handler) {
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set());
    this.#handlers.get(name).add(handler);
    return () => this.off(name, handler);
  }

  off(name, handler) {
    if (handler === undefined) this.#handlers.delete(name);
    else this.#handlers.get(name)?.delete(handler);
  }

  emit(name, ...args) {
    for (const handler of [...(this.#handlers.get(name) ?? [])]) {
      try {
        handler(...args);
      } catch (error) {
        console.error(`handler for "${name}" failed`, error);
      }
    }
  }
}
