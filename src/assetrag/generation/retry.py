"""Bounded retries of one request, and the clock a backend reports `elapsed_s` with."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from assetrag.generation.errors import (
    GenerationAuthError,
    GenerationError,
    GenerationRateLimited,
    GenerationUnavailable,
)

if TYPE_CHECKING:
    from assetrag.generation.types import GenerationOptions

T = TypeVar("T")


@dataclass
class Verdict:
    """A backend's reading of one failed request: the error to raise, and whether to retry."""

    error: GenerationError
    retryable: bool = False
    retry_after_s: float | None = None


def status_verdict(
    vendor: str,
    status: int,
    detail: str,
    *,
    backend: str,
    model: str,
    key_hint: str,
    env_var: str,
    retry_after_s: float | None = None,
    rate_hint: str = "wait and try again or lower concurrency",
) -> Verdict:
    """How every backend reads an HTTP error status: 401/403 a key problem (`key_hint` says what to set), 429 a
    rate limit (retried, after `retry_after_s` when the API named a wait), 408/5xx the API failing (retried),
    404 an unknown model, anything else a rejected request. `detail`: the status and the API's message, shown."""
    if status in (401, 403):
        error: GenerationError = GenerationAuthError(
            f"{vendor} refused the request ({detail}); {key_hint}", env_var=env_var, backend=backend
        )
        return Verdict(error)
    if status == 429:
        asked = f" (the API asked to wait {retry_after_s:g}s)" if retry_after_s is not None else ""
        error = GenerationRateLimited(
            f"{vendor} rate limit reached ({detail}){asked}; {rate_hint}", retry_after_s=retry_after_s, backend=backend
        )
        return Verdict(error, retryable=True, retry_after_s=retry_after_s)
    if status == 408 or status >= 500:
        error = GenerationUnavailable(
            f"{vendor} API failed ({detail}); try again later", status_code=status, backend=backend
        )
        return Verdict(error, retryable=True)
    if status == 404:
        return Verdict(
            GenerationError(f"{vendor} model {model!r} was not found ({detail}); check the model name", backend=backend)
        )
    return Verdict(GenerationError(f"{vendor} rejected the request ({detail})", backend=backend))


def call_with_retries(
    send: Callable[[], T],
    classify: Callable[[Exception], Verdict | None],
    options: GenerationOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int, list[str]]:
    """Run `send` until it succeeds, retrying what `classify` calls retryable.

    Waits max(provider hint, retry_backoff_s * 2**k) before retry k+1; stops after
    `options.max_retries` retries, or earlier when the next wait would push the total past
    `options.max_retry_wait_s`. Exceptions `classify` returns None for propagate unchanged.
    Returns (result, attempts, notes) where notes describe each retry (for result warnings).
    """
    attempts = 0
    waited = 0.0
    notes: list[str] = []
    while True:
        attempts += 1
        try:
            return send(), attempts, notes
        except GenerationError as exc:
            exc.attempts = attempts
            raise
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            err = verdict.error
            err.attempts = attempts
            if isinstance(err, GenerationRateLimited) and verdict.retry_after_s is not None:
                err.retry_after_s = verdict.retry_after_s
            if not verdict.retryable:
                raise err from exc
            retries_done = attempts - 1
            delay = max(verdict.retry_after_s or 0.0, options.retry_backoff_s * 2**retries_done)
            if retries_done >= options.max_retries:
                _give_up(err, f"gave up after {attempts} attempt(s), {waited:.2f}s of waiting")
                raise err from exc
            if waited + delay > options.max_retry_wait_s:
                _give_up(
                    err,
                    f"gave up after {attempts} attempt(s): the next wait ({delay:.2f}s) would pass "
                    f"max_retry_wait_s={options.max_retry_wait_s:g}",
                )
                raise err from exc
            notes.append(f"attempt {attempts} failed ({_first_line(err)}); retried after {delay:.2f}s")
            sleep(delay)
            waited += delay


def _give_up(err: GenerationError, note: str) -> None:
    err.args = (f"{err.args[0]} ({note})", *err.args[1:])


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


class Stopwatch:
    """Elapsed seconds since construction (monotonic)."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0
