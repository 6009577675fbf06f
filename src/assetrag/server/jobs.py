"""Background jobs (ingest, generate): a registry the API polls, progress fed by `ProgressSink` calls."""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from assetrag.errors import AssetragError

log = logging.getLogger("assetrag.server")

JobStatus = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    """One background task. `progress` is {total, done, description}; `result` is JSON-able."""

    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = "queued"
    total: int | None = None
    done: int = 0
    description: str = "queued"
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ProgressSink ---------------------------------------------------------------------------------
    def start(self, total: int, description: str) -> None:
        with self._lock:
            self.total, self.done, self.description = total, 0, description

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n

    def stop(self) -> None:
        pass

    def step(self, description: str) -> None:
        """Name what the job is doing now (for jobs without a countable total)."""
        with self._lock:
            self.description = description

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            elapsed = None
            if self.started is not None:
                elapsed = round((self.finished or time.time()) - self.started, 3)
            fraction = None
            if self.status == "done":
                fraction = 1.0
            elif self.total:
                fraction = round(min(self.done / self.total, 1.0), 4)
            return {
                "id": self.id,
                "kind": self.kind,
                "status": self.status,
                "params": self.params,
                "progress": {
                    "total": self.total,
                    "done": self.done,
                    "fraction": fraction,
                    "description": self.description,
                },
                "result": self.result,
                "error": self.error,
                "created": self.created,
                "started": self.started,
                "finished": self.finished,
                "elapsed_s": elapsed,
            }


class JobRegistry:
    """Runs jobs one at a time on a worker thread (writes to the store are serial anyway) and remembers
    the last `keep` of them."""

    def __init__(self, *, keep: int = 200, redact: Callable[[str], str] = lambda s: s) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assetrag-job")
        self._keep = keep
        self._redact = redact

    def submit(self, kind: str, fn: Callable[[Job], Any], params: dict[str, Any] | None = None) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind, params=dict(params or {}))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, fn)
        return job

    def _run(self, job: Job, fn: Callable[[Job], Any]) -> None:
        job.status, job.started, job.description = "running", time.time(), "starting"
        try:
            result = fn(job)
        except AssetragError as exc:
            job.error = self._redact(str(exc))
            job.result = getattr(exc, "result", None)  # e.g. a refused prune: the ingest that was done
            job.status = "failed"
        except Exception as exc:  # a job must never take the worker down; the log keeps the traceback
            job.error = self._redact(f"{type(exc).__name__}: {exc}")
            job.status = "failed"
            log.error("job %s (%s) failed:\n%s", job.id, job.kind, self._redact(traceback.format_exc()))
        else:
            job.result = result
            job.status = "done"
            job.description = "done"
        finally:
            job.finished = time.time()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job finishes (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        job = self.get(job_id)
        if job is None:
            raise KeyError(job_id)
        while job.status in ("queued", "running"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout}s")
            time.sleep(0.02)
        return job

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
