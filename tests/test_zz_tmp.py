import time
from tests.support import Player

async def test_speed(server):
    host = await Player.create(server, "A")
    t=time.perf_counter()
    for _ in range(100): await host.view()
    print("view", (time.perf_counter()-t)*10, "ms")
    t=time.perf_counter()
    for _ in range(50): await host.post("/chat", {"text":"x"})
    print("chat", (time.perf_counter()-t)*20, "ms")
    t=time.perf_counter()
    for _ in range(100): await host.client.get("/healthz")
    print("healthz", (time.perf_counter()-t)*10, "ms")
    await host.close()
