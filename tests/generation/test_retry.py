"""The retry policy: bounded by count and by total wait, hint or exponential backoff, whichever is longer."""

from __future__ import annotations

import pytest

from assetrag.generation import GenerationError, GenerationOptions, GenerationRateLimited, GenerationUnavailable
from assetrag.generation.retry import Verdict, call_with_retries


class _Flaky:
    """Fails with the given exceptions, then returns "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _classify(exc: Exception) -> Verdict | None:
    if isinstance(exc, TimeoutError):
        return Verdict(GenerationRateLimited("slow down"), retryable=True, retry_after_s=float(str(exc) or 0))
    if isinstance(exc, ConnectionError):
        return Verdict(GenerationUnavailable("down"), retryable=True)
    if isinstance(exc, PermissionError):
        return Verdict(GenerationError("no"))
    return None


def test_retry_waits_the_longer_of_hint_and_exponential_backoff():
    sleeps: list[float] = []
    send = _Flaky(ConnectionError(), TimeoutError("0.5"), ConnectionError(), ConnectionError())
    opts = GenerationOptions(max_retries=5, retry_backoff_s=0.1, max_retry_wait_s=10)
    result, attempts, notes = call_with_retries(send, _classify, opts, sleep=sleeps.append)
    assert result == "ok" and attempts == 5 and len(notes) == 4
    assert sleeps == pytest.approx([0.1, 0.5, 0.4, 0.8])


def test_retry_is_bounded_by_count_and_by_total_wait():
    sleeps: list[float] = []
    opts = GenerationOptions(max_retries=2, retry_backoff_s=0.1, max_retry_wait_s=10)
    with pytest.raises(GenerationUnavailable, match=r"gave up after 3 attempt\(s\)") as info:
        call_with_retries(_Flaky(*[ConnectionError()] * 5), _classify, opts, sleep=sleeps.append)
    assert info.value.attempts == 3 and sleeps == pytest.approx([0.1, 0.2])

    sleeps.clear()
    opts = GenerationOptions(max_retries=10, retry_backoff_s=1, max_retry_wait_s=3.5)
    with pytest.raises(GenerationUnavailable, match=r"would pass max_retry_wait_s=3\.5") as info:
        call_with_retries(_Flaky(*[ConnectionError()] * 9), _classify, opts, sleep=sleeps.append)
    assert sleeps == [1, 2] and info.value.attempts == 3


def test_non_retryable_and_unknown_errors_are_not_retried():
    sleeps: list[float] = []
    send = _Flaky(PermissionError())
    with pytest.raises(GenerationError, match="no") as info:
        call_with_retries(send, _classify, GenerationOptions(), sleep=sleeps.append)
    assert send.calls == 1 and sleeps == [] and isinstance(info.value.__cause__, PermissionError)
    send = _Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        call_with_retries(send, _classify, GenerationOptions(), sleep=sleeps.append)
    assert send.calls == 1
