"""One reconcile of a cycle at a time: the timer and a finished phase Job share a lock."""

from __future__ import annotations

import threading

from weavergen.handlers.cycles import exclusive


def test_a_second_reconcile_of_the_same_cycle_skips_while_the_first_holds_it() -> None:
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with exclusive("ns", "c1", wait=0) as held:
            assert held
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(5)
    with exclusive("ns", "c1", wait=0) as held:
        assert not held  # the timer's tick: skip, the holder sees the same state
    with exclusive("ns", "c2", wait=0) as held:
        assert held  # another cycle is not held up
    waiter: list[bool] = []
    late = threading.Thread(target=lambda: waiter.append(_take("c1", wait=5)))
    late.start()
    release.set()
    thread.join(5)
    late.join(5)
    assert waiter == [True]  # a finished Job's event waits its turn


def _take(name: str, wait: float) -> bool:
    with exclusive("ns", name, wait=wait) as held:
        return held
