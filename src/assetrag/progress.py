"""Where long operations report progress: the CLI draws a bar, the server records it in a job."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    """`start(total, description)`, then `advance(n)` as work is done, then `stop()`."""

    def start(self, total: int, description: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...
