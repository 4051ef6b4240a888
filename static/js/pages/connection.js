// The real-time cues every page shares: the status indicator, the reconnection overlay, toasts.

import { $, setText, show } from "./dom.js";
import { toast } from "./toasts.js";

const TRANSPORT_NAMES = { socketio: "websocket", sse: "SSE fallback", poll: "long-poll fallback" };

export function transportName(name) {
  return TRANSPORT_NAMES[name] ?? "none";
}

// What the indicator shows: connected / fallback / connecting / reconnecting / offline.
export function indicatorFor(info) {
  switch (info.state) {
    case "connected":
      return info.fallback
        ? { state: "fallback", label: `Connected · ${transportName(info.transport)}` }
        : { state: "connected", label: "Connected" };
    case "connecting":
      return { state: "connecting", label: "Connecting…" };
    case "reconnecting":
      if (!navigator.onLine) return { state: "offline", label: "Offline · waiting for the network" };
      return { state: "reconnecting", label: `Reconnecting… (try ${info.attempt} of ${info.maxTries})` };
    default:
      return { state: "offline", label: info.state === "idle" ? "Not connected" : "Offline" };
  }
}

export function showIndicator(info) {
  const { state, label } = indicatorFor(info);
  const element = $("connection");
  element.dataset.state = state;
  element.dataset.transport = info.transport ?? "";
  element.title = info.error ? `${label}: ${info.error}` : label;
  setText("connection-label", label);
}

// Wires a GameClient to the indicator, the overlay (when the page has one) and toasts.
export function watchConnection(client, { overlay = true } = {}) {
  let lastTransport = null;
  let countdown = null;
  client.on("transport_failed", ({ transport }) => {
    const next = client.ladder()[client.ladder().indexOf(transport) + 1];
    if (next) toast(`${transportName(transport)} is blocked here: trying ${transportName(next)}`, { kind: "warn" });
  });
  client.on("state", (info) => {
    showIndicator(info);
    clearInterval(countdown);
    if (!overlay) return;
    if (info.state === "reconnecting") {
      showOverlay({ spinning: true, title: "Reconnecting…", detail: retryText(info, info.delay) });
      let left = info.delay;
      countdown = setInterval(() => {
        left = Math.max(0, left - 1000);
        setText("overlay-detail", retryText(info, left));
      }, 1000);
      if (info.attempt === 1) toast("Connection lost. Reconnecting…", { kind: "warn" });
    } else if (info.state === "failed") {
      const fatal = ["AUTH_REQUIRED", "NOT_IN_GAME", "INVALID_GAME"].includes(info.code);
      showOverlay({
        spinning: false, title: fatal ? "You are not at this table" : "Connection failed",
        detail: fatal ? info.error : "The server could not be reached. Reload the page to try again.",
        reload: true,
      });
      toast("Connection failed.", { kind: "error" });
    } else if (info.state === "connected") {
      show("overlay", false);
      if (info.reconnected) toast("Reconnected.", { kind: "ok" });
      if (info.fallback && info.transport !== lastTransport && !client.options.forced) {
        toast(`Live connection unavailable: playing over the ${transportName(info.transport)}.`, { kind: "warn" });
      }
      lastTransport = info.transport;
    }
  });
  if (overlay) $("reload").addEventListener("click", () => window.location.reload());
  window.addEventListener("online", () => client.retry());
}

function retryText(info, delay) {
  const seconds = Math.ceil((delay ?? 0) / 1000);
  const when = seconds > 0 ? `in ${seconds} s` : "now";
  return `Try ${info.attempt} of ${info.maxTries}, ${when}. Your place in the game is kept.`;
}

function showOverlay({ spinning, title, detail, reload = false }) {
  show("overlay");
  show("overlay-spinner", spinning);
  setText("overlay-title", title);
  setText("overlay-detail", detail);
  show("reload", reload);
  if (reload) $("reload").focus();
}
