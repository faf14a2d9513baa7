"""Charters share Prometheus answers: one query per slot and question, whoever asks, errors too.

The sharing is tested on its own here, with plain functions as the questions; the queries
themselves are tested against a real Prometheus (tests/integration/test_prometheus.py).
"""

from __future__ import annotations

import threading
import time

import pytest

from weavergen.domain.errors import PrometheusUnavailable
from weavergen.domain.measure.red import evaluation_time
from weavergen.telemetry.prometheus import Prometheus, SharedAnswers


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_concurrent_askers_of_one_question_wait_for_one_answer() -> None:
    answers: SharedAnswers[int] = SharedAnswers(10)
    calls: list[int] = []
    release = threading.Event()

    def slow() -> int:
        calls.append(1)
        release.wait(5)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(answers.get("q", slow))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [42] * 8
    assert calls == [1]


def test_an_error_is_shared_like_an_answer_until_it_is_old() -> None:
    clock = Clock()
    answers: SharedAnswers[int] = SharedAnswers(10, clock=clock)
    calls: list[str] = []

    def down() -> int:
        calls.append("down")
        raise PrometheusUnavailable("Prometheus at http://p did not answer: refused")

    for _ in range(3):
        with pytest.raises(PrometheusUnavailable, match="http://p"):
            answers.get("q", down)
    assert calls == ["down"]
    clock.now += 11
    assert answers.get("other", lambda: 1) == 1  # asking anything forgets the old answers
    assert answers.get("q", lambda: 7) == 7
    assert len(answers) == 2


def test_different_questions_are_asked_separately() -> None:
    answers: SharedAnswers[str] = SharedAnswers(10)
    assert answers.get(("url", "a"), lambda: "a") == "a"
    assert answers.get(("url", "b"), lambda: "b") == "b"


def test_charters_measured_within_a_slot_share_its_evaluation_time() -> None:
    clock = Clock(1003.9)
    prometheus = Prometheus(slot_seconds=5, clock=clock)
    first = prometheus.now()
    clock.now = 1004.99
    assert prometheus.now() == first == 1000.0
    clock.now = 1005.0
    assert prometheus.now() == 1005.0 == evaluation_time(1007.2, 5)
