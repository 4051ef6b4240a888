// Diagnostics: one GameClient on a chosen transport, every event raw, the cursor and the latency.
// Prefill with ?game=CODE&transport=sse.

import { DEFAULT_BACKOFF, GameClient, forgetTransport, rememberedTransport } from "../arcane/index.js";
import { $, h, setText } from "./dom.js";
import { showIndicator, transportName } from "./connection.js";

const LOG_LIMIT = 500;
const PING_EVERY_MS = 5000;
const params = new URLSearchParams(window.location.search);
let client = null;
let pinger = null;

const fields = {
  code: $("diag-code"), token: $("diag-token"), transport: $("diag-transport"), after: $("diag-after"),
  initialDelay: $("diag-initial"), factor: $("diag-factor"), maxDelay: $("diag-max"), maxTries: $("diag-tries"),
};
fields.code.value = (params.get("game") ?? "").toUpperCase();
fields.transport.value = ["socketio", "sse", "poll"].includes(params.get("transport")) ? params.get("transport") : "";
for (const key of ["initialDelay", "factor", "maxDelay", "maxTries"]) fields[key].value = String(DEFAULT_BACKOFF[key]);

function number(input) {
  const value = Number.parseFloat(input.value);
  return Number.isFinite(value) ? value : undefined;
}

// in: from the server; out: sent; state: the connection; note: the client's own remarks.
const MARKS = { in: "←", out: "→", state: "•", note: "!", ping: "↔", dropped: "✕" };

function logLine(direction, name, data = undefined, seq = null) {
  const list = $("raw-log");
  const time = new Date().toISOString().slice(11, 23);
  list.append(h("li", { dataset: { direction, event: name, seq: seq ?? "" } },
    h("span", { class: "time" }, time), " ",
    h("span", { class: "dir", "aria-label": direction }, MARKS[direction] ?? direction),
    h("span", { class: "name" }, name),
    seq !== null ? h("span", { class: "seq" }, `#${seq}`) : null,
    data === undefined ? null : JSON.stringify(data)));
  while (list.children.length > LOG_LIMIT) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function refreshStats() {
  setText("stat-state", client?.state ?? "idle");
  setText("stat-transport", client?.transport ? transportName(client.transport) : "–");
  setText("stat-seq", client?.seq ?? "–");
  setText("stat-latency", client?.latency === null || client?.latency === undefined ? "–" : `${client.latency} ms`);
  setText("stat-reconnects", String(client?.reconnects ?? 0));
  setText("stat-duplicates", String(client?.duplicates ?? 0));
  setText("stat-remembered", rememberedTransport() ?? "–");
}

function disconnect() {
  clearInterval(pinger);
  client?.close();
  client = null;
  refreshStats();
}

$("connect-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setText("connect-error", "");
  disconnect();
  try {
    const after = fields.after.value.trim() === "" ? undefined : Number.parseInt(fields.after.value, 10);
    client = new GameClient({
      gameCode: fields.code.value.trim().toUpperCase(),
      token: fields.token.value.trim() || null,
      transport: fields.transport.value || null,
      backoff: {
        initialDelay: number(fields.initialDelay), factor: number(fields.factor),
        maxDelay: number(fields.maxDelay), maxTries: number(fields.maxTries),
      },
    });
    window.arcane = { client };
    client.on("*", (name, data, meta) => {
      logLine("in", name, data, meta.seq);
      refreshStats();
    });
    client.on("duplicate", ({ event, seq }) => {
      logLine("dropped", `${event} (duplicate dropped)`, undefined, seq);
      refreshStats();
    });
    client.on("transport_failed", ({ transport, error }) => logLine("note", `${transport} failed`, error));
    client.on("latency", refreshStats);
    client.on("state", (info) => {
      showIndicator(info);
      const detail = { transport: info.transport, seq: info.seq };
      if (info.delay !== undefined) {
        Object.assign(detail, { attempt: info.attempt, of: info.maxTries, delay_ms: info.delay });
      }
      if (info.error) detail.error = info.error;
      if (info.ack) detail.ack = info.ack;
      logLine("state", info.state, detail);
      refreshStats();
    });
    client.connect(after === undefined || Number.isNaN(after) ? {} : { after }).catch(() => {});
    pinger = setInterval(() => {
      if (client?.state === "connected") client.ping().catch(() => {});
    }, PING_EVERY_MS);
  } catch (error) {
    setText("connect-error", error.message);
  }
});

$("diag-disconnect").addEventListener("click", () => {
  disconnect();
  showIndicator({ state: "idle" });
  logLine("state", "closed");
});

$("diag-forget").addEventListener("click", () => {
  forgetTransport();
  refreshStats();
});

$("diag-ping").addEventListener("click", async () => {
  if (!client) return;
  try {
    const { latency } = await client.ping();
    logLine("ping", "ping", { latency_ms: latency });
  } catch (error) {
    logLine("note", "ping failed", { code: error.code, message: error.message });
  }
  refreshStats();
});

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("send-event").value.trim();
  let payload;
  try {
    const raw = $("send-payload").value.trim();
    payload = raw ? JSON.parse(raw) : undefined;
  } catch (error) {
    setText("send-result", `The payload is not JSON: ${error.message}`);
    return;
  }
  if (!client) {
    setText("send-result", "Connect first.");
    return;
  }
  logLine("out", name, payload);
  try {
    const result = await client.send(name, payload);
    setText("send-result", JSON.stringify(result, null, 2));
  } catch (error) {
    setText("send-result", JSON.stringify({ error: { code: error.code, message: error.message } }, null, 2));
  }
  refreshStats();
});

$("log-clear").addEventListener("click", () => $("raw-log").replaceChildren());
refreshStats();
