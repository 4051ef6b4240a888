"""The client library's own rules, run in the browser against scripted transports.

The pages' suites show the rules hold with the real server; these pin down the
schedule and the cursor exactly, which a live server cannot provoke at will.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.harness import Browser, Page
from tests.support import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Transports that play a script: each `open` takes the next entry of `window.script`.
SCRIPTED = """
window.lib = await import("/static/js/arcane/index.js");
window.opened = [];
window.epochs = [];
window.states = [];
class Scripted {
  name = "scripted";
  constructor() { this.connected = true; }
  async open({ after, epoch, deliver, closed }) {
    window.opened.push(after);
    window.epochs.push(epoch);
    const step = window.script.shift();
    if (!step || step.fail) throw new lib.TransportError("scripted", "refused");
    for (const [event, data] of step.events ?? []) deliver(event, data);
    if (step.drop) setTimeout(() => closed("dropped"), 0);
    if (step.later) setTimeout(() => { for (const [event, data] of step.later) deliver(event, data); }, 0);
    return { ok: true, ...(step.ack ?? {}) };
  }
  async send(event, payload) { return { ok: true, event, payload }; }
  close() {}
}
window.makeClient = (backoff) => {
  const client = new lib.GameClient({
    gameCode: window.gameCode, backoff, transports: { scripted: Scripted }, storage: null,
  });
  client.on("state", (s) => window.states.push([s.state, s.delay ?? null, s.attempt ?? null]));
  return client;
};
"""


async def library_page(browser: Browser, server: LiveServer, *, seated: bool = True) -> Page:
    """A page with the library loaded; `seated`: the browser holds a seat in a game (`gameCode`)."""
    page = await browser.new_page(base_url=server.url)
    await page.goto("/diagnostics")
    await page.evaluate(f"async () => {{ {SCRIPTED} }}")
    if seated:
        # A real game: when a transport fails the client asks the server whether it is refused.
        seat = await (await page.request.post("/api/games", data={"player_name": "Ann"})).json()
        await page.evaluate("(code) => { window.gameCode = code; }", seat["game_code"])
    return page


async def run(page: Page, script: list[dict[str, Any]], body: str) -> Any:
    await page.evaluate("(script) => { window.script = script; }", script)
    return await page.evaluate(f"async () => {{ {body} }}")


async def test_the_default_schedule_is_one_second_times_one_and_a_half_capped_at_ten_ten_tries(
    browser: Browser, server: LiveServer,
) -> None:
    page = await library_page(browser, server)
    delays = await page.evaluate("lib.backoffDelays()")
    assert delays == [1000, 1500, 2250, 3375, 5062.5, 7593.75, 10000, 10000, 10000, 10000]
    assert await page.evaluate("lib.backoffDelays({initialDelay: 100, factor: 2, maxDelay: 500, maxTries: 5})") == [
        100, 200, 400, 500, 500]
    await page.close()


async def test_reconnects_are_spread_by_jitter_so_a_restart_brings_no_stampede(
    browser: Browser, server: LiveServer,
) -> None:
    page = await library_page(browser, server)
    firsts = await page.evaluate("Array.from({length: 200}, () => new lib.Backoff().next())")
    assert all(500 <= d <= 1000 for d in firsts), firsts  # the first second, halved at most
    assert len(set(firsts)) > 50, "the first reconnects are not spread"
    assert await page.evaluate("new lib.Backoff({ jitter: 0 }).next()") == 1000
    assert await page.evaluate("new lib.Backoff().next(() => 1)") == 500
    await page.close()


async def test_a_draining_server_is_left_at_once_without_waiting_out_the_backoff(
    browser: Browser, server: LiveServer,
) -> None:
    page = await library_page(browser, server)
    script = [{"events": [["chat_message", {"seq": 3, "text": "a"}]],
               "later": [["server_draining", {"reconnect": True}]]},
              {"events": [["chat_message", {"seq": 4, "text": "b"}]]}]
    result = await run(page, script, """
        const client = makeClient({ initialDelay: 60000, maxTries: 3 });
        const started = performance.now();
        await client.connect({ after: 2 });
        while (window.opened.length < 2 || client.state !== "connected") await new Promise((r) => setTimeout(r, 5));
        return { ms: performance.now() - started, seq: client.seq, reconnects: client.reconnects };
    """)
    assert result["ms"] < 5000, result  # not the 60 s the backoff would have waited
    assert result["seq"] == 4 and result["reconnects"] == 1
    assert await page.evaluate("window.opened") == [2, 3]  # back from its cursor
    assert ["reconnecting", 0, 0] in await page.evaluate("window.states")
    await page.close()


async def test_after_the_last_try_the_client_says_connection_failed(browser: Browser, server: LiveServer) -> None:
    page = await library_page(browser, server)
    outcome = await run(page, [{"fail": True}] * 5, """
        const client = makeClient({ initialDelay: 10, factor: 2, maxDelay: 40, maxTries: 4, jitter: 0 });
        try { await client.connect(); return "connected"; }
        catch (error) { return [error.code, client.state]; }
    """)
    assert outcome == ["CONNECTION_FAILED", "failed"]
    states = await page.evaluate("window.states")
    assert states == [
        ["connecting", None, None],
        ["reconnecting", 10, 1], ["reconnecting", 20, 2], ["reconnecting", 40, 3], ["reconnecting", 40, 4],
        ["failed", None, None],
    ]
    assert await page.evaluate("window.opened.length") == 5  # the first try, then four more
    await page.close()


async def test_every_reconnect_resumes_from_the_last_seq_and_drops_what_it_has_seen(
    browser: Browser, server: LiveServer,
) -> None:
    page = await library_page(browser, server)
    script = [
        {"events": [["chat_message", {"seq": 3, "text": "a"}], ["player_typing", {"is_typing": True}],
                    ["chat_message", {"seq": 5, "text": "b"}]], "drop": True},
        # The replay overlaps what arrived live: seq 5 again, an older 4, then the new 6.
        {"events": [["chat_message", {"seq": 5, "text": "b"}], ["chat_message", {"seq": 4, "text": "late"}],
                    ["chat_message", {"seq": 6, "text": "c"}]], "drop": True},
        # A snapshot moves the cursor: 7 and 8 are covered by it; 9 is new.
        {"events": [["reconnect_sync", {"seq": 8, "recovered": False}], ["chat_message", {"seq": 7}],
                    ["chat_message", {"seq": 9, "text": "d"}]]},
    ]
    result = await run(page, script, """
        const client = makeClient({ initialDelay: 5, maxTries: 3 });
        const texts = [];
        client.on("chat_message", (data) => texts.push(data.text ?? null));
        const syncs = [];
        client.on("reconnect_sync", (data) => syncs.push(data.seq));
        await client.connect({ after: 2 });
        while (window.script.length || client.state !== "connected") await new Promise((r) => setTimeout(r, 5));
        return { texts, syncs, log: client.log.map((e) => e.seq), duplicates: client.duplicates,
                 seq: client.seq, reconnects: client.reconnects };
    """)
    assert await page.evaluate("window.opened") == [2, 5, 6]
    assert result == {"texts": ["a", "b", "c", "d"], "syncs": [8], "log": [3, 5, 6, 9], "duplicates": 3,
                      "seq": 9, "reconnects": 2}
    await page.close()


async def test_the_epoch_learnt_from_an_ack_or_a_snapshot_goes_back_with_the_cursor(
    browser: Browser, server: LiveServer,
) -> None:
    page = await library_page(browser, server)
    script = [
        {"ack": {"epoch": "aaaa0001"}, "events": [["chat_message", {"seq": 3}]], "drop": True},
        # The server's log was restored: a snapshot of the new stream, with its epoch.
        {"events": [["reconnect_sync", {"seq": 7, "recovered": False, "epoch": "bbbb0002"}]], "drop": True},
        {"events": []},
    ]
    seen = await run(page, script, """
        const client = makeClient({ initialDelay: 10, factor: 1, maxDelay: 10, maxTries: 5 });
        await client.connect();
        await new Promise((resolve) => { const t = setInterval(() => {
          if (window.opened.length === 3 && client.state === "connected") { clearInterval(t); resolve(); } }, 10); });
        return { opened: window.opened, epochs: window.epochs, epoch: client.epoch };
    """)
    assert seen == {"opened": [None, 3, 7], "epochs": [None, "aaaa0001", "bbbb0002"], "epoch": "bbbb0002"}
    await page.close()


async def test_actions_have_one_api_on_every_transport(browser: Browser, server: LiveServer) -> None:
    page = await library_page(browser, server)
    sent = await run(page, [{}], """
        const client = makeClient({});
        await client.connect();
        return [await client.makeChoice("b"), await client.makeChoice({ text: "run" }), await client.chat("hi"),
                await client.typing(1)];
    """)
    assert [(s["event"], s["payload"]) for s in sent] == [
        ("make_choice", {"option_id": "b"}), ("make_choice", {"text": "run"}), ("chat_message", {"text": "hi"}),
        ("typing", {"is_typing": True}),
    ]
    await page.close()


@pytest.mark.parametrize("transport", ["socketio", "sse", "poll"])
async def test_a_refusal_stops_the_client_at_once_on_every_transport(
    browser: Browser, server: LiveServer, transport: str,
) -> None:
    page = await library_page(browser, server, seated=False)
    code = (await (await page.request.post("/api/games", data={"player_name": "Ann"})).json())["game_code"]
    await page.context.clear_cookies()  # no identity left in this browser
    outcome = await page.evaluate("""async ([code, transport]) => {
        const client = new lib.GameClient({ gameCode: code, transport, storage: null });
        const states = [];
        client.on("state", (s) => states.push(s.state));
        try { await client.connect(); return "connected"; }
        catch (error) { return [error.code, states]; }
    }""", [code, transport])
    assert outcome == ["AUTH_REQUIRED", ["connecting", "failed"]]
    await page.close()
