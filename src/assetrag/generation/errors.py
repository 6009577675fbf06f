"""Errors a generation backend raises; each message says what happened and what to do."""

from __future__ import annotations

from assetrag.errors import AssetragError


class GenerationError(AssetragError):
    """Base class: a generator could not produce an image.

    `backend` names the generator ("gemini", "openai", ...); `attempts` is how many requests
    were sent before giving up (0 when the request never left the machine).
    """

    def __init__(self, message: str, *, backend: str | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.backend = backend
        self.attempts = attempts


class GenerationOptionsError(GenerationError, ValueError):
    """The options or references do not fit what the backend accepts (the message lists what does)."""


class GeneratorSetupError(GenerationError):
    """The backend cannot be set up here: unknown name, package or checkpoint missing."""


class GenerationBlocked(GenerationError):
    """The provider's safety system refused the prompt or the output. `reason` is its code."""

    def __init__(self, message: str, *, reason: str, backend: str | None = None, attempts: int = 0) -> None:
        super().__init__(message, backend=backend, attempts=attempts)
        self.reason = reason


class GenerationNoImage(GenerationError):
    """The model answered without an image. `text` holds what it said instead (may be empty)."""

    def __init__(self, message: str, *, text: str = "", backend: str | None = None, attempts: int = 0) -> None:
        super().__init__(message, backend=backend, attempts=attempts)
        self.text = text


class GenerationRateLimited(GenerationError):
    """Still rate-limited (HTTP 429) after the bounded retries, or the quota is exhausted.

    `retry_after_s` is the provider's last hint of how long to wait, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        backend: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, backend=backend, attempts=attempts)
        self.retry_after_s = retry_after_s


class GenerationUnavailable(GenerationError):
    """The provider could not be reached or failed (5xx, timeout, connection refused)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        timed_out: bool = False,
        backend: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, backend=backend, attempts=attempts)
        self.status_code = status_code
        self.timed_out = timed_out


class GenerationAuthError(GenerationError):
    """The API key is missing or refused. `env_var` names the variable to set."""

    def __init__(self, message: str, *, env_var: str, backend: str | None = None, attempts: int = 0) -> None:
        super().__init__(message, backend=backend, attempts=attempts)
        self.env_var = env_var
