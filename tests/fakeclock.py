"""A fake monotonic clock for the crawl's deadlines and pace (`registry.Budget(clock, sleep)`),
so no test waits real seconds for them or bounds how long a wait took on the wall clock."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from mirror import registry

# A trickling answer names the seconds each of its reads stands for (tests/chaos_upstream.py).
INTERVAL_HEADER = "X-Chaos-Interval"


class FakeClock:
    """Seconds that pass only when told: `sleep` (the crawl's waits) and `advance` move it."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _TickingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, clock: FakeClock, seconds: float) -> None:
        self.inner, self.clock, self.seconds = inner, clock, seconds

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.clock.advance(self.seconds)  # the read took that long
            yield chunk

    def close(self) -> None:
        self.inner.close()


class TickingTransport(httpx.BaseTransport):
    """Real HTTP, but each read of a body that names an interval (INTERVAL_HEADER) moves
    `clock` on by that many seconds, however long it really took."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = httpx.HTTPTransport()
        self.clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        interval = response.headers.get(INTERVAL_HEADER)
        if interval is not None:
            response.stream = _TickingStream(response.stream, self.clock, float(interval))
        return response

    def close(self) -> None:
        self.inner.close()


def ticking_client(clock: FakeClock, timeout: float = 5.0) -> httpx.Client:
    """registry.make_client's client, over a TickingTransport."""
    return httpx.Client(transport=TickingTransport(clock), timeout=httpx.Timeout(timeout, connect=10.0),
                        headers={"User-Agent": registry.USER_AGENT, "Accept": "application/json"},
                        follow_redirects=False)
