"""Sharing one object between threads, call by call."""

from __future__ import annotations

import threading
from typing import Any


class Serialised:
    """A proxy that runs every method call of `target` while holding `lock`.

    The Milvus Lite client is not safe for concurrent use, and a model's tokenizer is not either; the
    server wraps both so request threads and the job thread take turns call by call (a long ingest does
    not hold up searches for its whole run). Iterators the target hands out are wrapped too.
    """

    __slots__ = ("_lock", "_target")

    def __init__(self, target: Any, lock: threading.RLock) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_lock", lock)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        lock = self._lock

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                out = attr(*args, **kwargs)
            if hasattr(out, "next") and hasattr(out, "close"):  # pymilvus' query iterator
                return Serialised(out, lock)
            return out

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"Serialised({self._target!r})"
