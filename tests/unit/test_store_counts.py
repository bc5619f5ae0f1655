"""`StoreCounts`: the store's counts read once per TTL, a stale list served while the next
is read in the background, the old list kept when the store fails."""

from __future__ import annotations

import threading

from service.online.store_counts import StoreCounts
from service.state import Event, StoreError


class Recorded:
    """The store's `popular_items`, counted, gated (a read can be held) and breakable."""

    def __init__(self, store) -> None:
        self.store, self.reads, self.fail = store, 0, False
        self.gate = threading.Event()
        self.gate.set()
        self.done = threading.Event()

    def popular_items(self, n: int):
        self.gate.wait(5)
        self.reads += 1
        try:
            if self.fail:
                raise StoreError("down")
            return self.store.popular_items(n)
        finally:
            self.done.set()


def test_one_read_per_ttl_and_stale_served_while_the_next_is_read(store):
    store.add_events("u", [Event("a", "read", 1.0, 3.0), Event("b", "read", 1.0, 1.0)])
    now = [0.0]
    recorded = Recorded(store)
    counts = StoreCounts(recorded, ttl_s=5, clock=lambda: now[0])
    assert [i for i, _ in counts.top(2)] == ["a", "b"] and recorded.reads == 1
    store.add_events("u", [Event("b", "read", 2.0, 5.0)])
    now[0] = 4.0
    assert [i for i, _ in counts.top(2)] == ["a", "b"] and recorded.reads == 1  # fresh enough

    now[0] = 6.0
    recorded.gate.clear()  # the background read waits: the request must not
    recorded.done.clear()
    assert [i for i, _ in counts.top(2)] == ["a", "b"]
    assert [i for i, _ in counts.top(1)] == ["a"]  # no second refresh while one runs
    recorded.gate.set()
    assert recorded.done.wait(5)
    for _ in range(100):  # the refresh thread stores its list just after the read returns
        if counts.top(1)[0][0] == "b":
            break
        threading.Event().wait(0.01)
    assert [i for i, _ in counts.top(2)] == ["b", "a"] and recorded.reads == 2


def test_more_than_is_kept_is_read_at_once_and_a_failed_refresh_keeps_the_list(store):
    store.add_events("u", [Event(f"i{n}", "read", 1.0, float(n + 1)) for n in range(1200)])
    now = [0.0]
    recorded = Recorded(store)
    counts = StoreCounts(recorded, ttl_s=5, clock=lambda: now[0])
    assert len(counts.top(10)) == 10 and recorded.reads == 1  # read 1000 at once
    assert len(counts.top(1000)) == 1000 and recorded.reads == 1
    assert len(counts.top(1100)) == 1100 and recorded.reads == 2

    recorded.fail, now[0] = True, 10.0
    recorded.done.clear()
    top = counts.top(3)
    assert recorded.done.wait(5) and recorded.reads == 3
    assert counts.top(3) == top == [("i1199", 1200.0), ("i1198", 1199.0), ("i1197", 1198.0)]
