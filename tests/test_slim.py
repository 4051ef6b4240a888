"""SlimQueue and SlimEvent behave as asyncio's queue and event do, where we use them; hypercorn's
keep-alive timeout is kept by one timer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arcane.queues import SlimEvent, SlimQueue
from arcane.serving import hypercorn as slim
from tests.support import needs_fast_paths, serving


async def test_a_slim_queue_is_fifo_bounded_and_wakes_its_getters_and_putters() -> None:
    queue = SlimQueue(2)
    queue.put_nowait("a")
    await queue.put("b")
    assert queue.full() and queue.qsize() == 2
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("c")
    blocked = asyncio.ensure_future(queue.put("c"))  # waits for room, as asyncio.Queue.put does
    await asyncio.sleep(0)
    assert not blocked.done()
    assert queue.get_nowait() == "a"
    await asyncio.wait_for(blocked, 1)
    assert [await queue.get(), queue.get_nowait()] == ["b", "c"] and queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()

    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("d")
    assert await asyncio.wait_for(waiting, 1) == "d"


async def test_a_getter_cancelled_as_an_item_arrives_leaves_it_for_the_next() -> None:
    queue = SlimQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")
    first.cancel()
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled() and queue.empty()


async def test_join_waits_for_every_item_to_be_done() -> None:
    queue = SlimQueue()
    await queue.join()  # nothing put: returns at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joined = asyncio.ensure_future(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()


async def test_a_slim_event_wakes_every_waiter_and_can_be_cleared() -> None:
    event = SlimEvent()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters) and not event.is_set()
    await event.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    await event.wait()  # already set: at once
    await event.clear()
    again = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0.01)
    assert not again.done()
    again.cancel()


async def _idle_after_one_request(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    return reader, writer


@needs_fast_paths('keepalive_timer')
async def test_a_keep_alive_connection_is_closed_at_hypercorns_timeout_by_one_timer_not_a_task(
    tmp_path: Path,
) -> None:
    from hypercorn.config import Config

    async with serving(tmp_path) as server:
        reader, writer = await _idle_after_one_request(server.port)
        (waiting,) = [list(timers) for timers in slim._idle.values() if timers]
        assert len(waiting) == 1 and isinstance(waiting[0], slim.KeepAliveTimer)
        assert not any(t.get_coro().__qualname__ == "TCPServer._idle_timeout" for t in asyncio.all_tasks())
        # Not before hypercorn's keep_alive_timeout (5 s), and soon after it.
        await asyncio.sleep(Config().keep_alive_timeout - 1)
        assert not reader.at_eof() and waiting[0]._handle is not None
        assert await asyncio.wait_for(reader.read(), 3) == b""
        assert waiting[0]._handle is None and not any(slim._idle.values())
        writer.close()


async def test_shutdown_closes_a_connection_waiting_for_its_next_request_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        reader, writer = await _idle_after_one_request(server.port)
        stopping = asyncio.ensure_future(server.stop())
        assert await asyncio.wait_for(reader.read(), 1) == b""  # not the 5 s keep-alive wait
        await stopping
        writer.close()
