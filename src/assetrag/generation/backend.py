"""What every backend shares: the `generate` prologue, option checks from its tables, the result.

A backend subclasses `Backend`, sets its tables (`aspect_ratios`, `sizes`, `max_images_per_call`,
...) and implements `_generate`; `Backend.generate` first fills in default options, checks them
and the references, and starts the clock. A backend that sends prompt and references to a
provider's API subclasses `RemoteBackend`, which adds the endpoint, the bounded retries and the
two transport failures every provider has (timeout, unreachable).
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from PIL import Image

from assetrag.generation.errors import GenerationOptionsError, GenerationUnavailable
from assetrag.generation.options import check_options, check_reference_count
from assetrag.generation.retry import Stopwatch, Verdict, call_with_retries
from assetrag.generation.types import GenerationOptions, GenerationResult, Reference

T = TypeVar("T")


def missing_module(*modules: str) -> str | None:
    """The first of `modules` that is not installed, or None (looked up, not imported: no SDK is loaded)."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package is missing
            found = False
        if not found:
            return name
    return None


def png_bytes(image: Image.Image, *, compress_level: int = 6) -> bytes:
    """The image encoded as PNG (lossless, so a receiver decodes exactly the pixels we hold)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


class Backend:
    """Base of the generator backends (each satisfies the `Generator` protocol).

    Besides the protocol's attributes a subclass sets `label` (how messages name it: "Gemini"),
    `max_images_per_call`, and where it has them `size_ok` / `size_rule` (sizes accepted by rule,
    see `check_options`), `needs_reference` (the message for a call without references) and
    `refuses_extra_references = False` (more references than `max_reference_images` are left
    unused, not refused).
    """

    name: str
    label: str
    model: str
    external: bool
    max_reference_images: int
    aspect_ratios: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    max_images_per_call: int = 1
    size_ok: Callable[[str], bool] | None = None
    size_rule: str = ""
    needs_reference: str = ""
    refuses_extra_references: bool = True

    def validate_options(self, options: GenerationOptions) -> None:
        """Raise `GenerationOptionsError` naming the bad value and the accepted ones."""
        check_options(
            options,
            backend=self.name,
            model=self.model,
            aspect_ratios=self.aspect_ratios,
            sizes=self.sizes,
            max_n=self.max_images_per_call,
            size_ok=self.size_ok,
            size_rule=self.size_rule,
        )

    def check_references(self, references: Sequence[Reference]) -> None:
        """Raise `GenerationOptionsError` when the references do not fit the model."""
        if self.needs_reference and not references:
            raise GenerationOptionsError(self.needs_reference, backend=self.name)
        if self.refuses_extra_references:
            check_reference_count(references, limit=self.max_reference_images, backend=self.name, model=self.model)

    def generate(
        self, prompt: str, references: Sequence[Reference], options: GenerationOptions | None = None
    ) -> GenerationResult:
        """New image(s) grounded on `references`; raises a `GenerationError` subclass on failure."""
        opts = options or GenerationOptions()
        self.validate_options(opts)
        self.check_references(references)
        return self._generate(prompt, references, opts, Stopwatch())

    def _generate(
        self, prompt: str, references: Sequence[Reference], opts: GenerationOptions, watch: Stopwatch
    ) -> GenerationResult:
        """The backend's own work, on checked options; `watch` started after the checks."""
        raise NotImplementedError

    def _extra_params(self, opts: GenerationOptions, accepted: Collection[str], warnings: list[str]) -> dict[str, Any]:
        """The `opts.extra` entries named in `accepted`; a warning names each other one."""
        params: dict[str, Any] = {}
        for key, value in opts.extra.items():
            if key in accepted:
                params[key] = value
            else:
                warnings.append(f"option extra[{key!r}] is not used by the {self.label} backend")
        return params

    def _result(
        self,
        prompt: str,
        references: Sequence[Reference],
        watch: Stopwatch,
        images: list[Image.Image],
        *,
        warnings: list[str],
        metadata: dict[str, Any],
        text: str | None = None,
        finish_reason: str | None = "stop",
    ) -> GenerationResult:
        """The result of this call: the model and backend, `references` as its lineage, the time taken."""
        return GenerationResult(
            images=images,
            model=self.model,
            backend=self.name,
            prompt=prompt,
            text=text,
            reference_ids=[r.id for r in references],
            finish_reason=finish_reason,
            elapsed_s=watch.elapsed,
            warnings=warnings,
            metadata=metadata,
        )


class RemoteBackend(Backend):
    """A backend that sends prompt and references to a provider (`external`), with bounded retries.

    The subclass implements `_classify`: its SDK's exception → a `Verdict`, or None to let it
    propagate; `_timed_out` and `_unreachable` are the verdicts every provider shares.
    """

    external = True
    base_url: str | None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def _send(self, send: Callable[[], T], opts: GenerationOptions) -> tuple[T, int, list[str]]:
        """`send()` through `call_with_retries` with this backend's `_classify`."""
        return call_with_retries(send, lambda exc: self._classify(exc, opts), opts)

    def _classify(self, exc: Exception, opts: GenerationOptions) -> Verdict | None:
        raise NotImplementedError

    def _timed_out(self, opts: GenerationOptions) -> Verdict:
        """No answer within `timeout_s` (not retried)."""
        return Verdict(
            GenerationUnavailable(
                f"{self.label} timed out: no answer within timeout_s={opts.timeout_s:g} s; raise the timeout "
                "(assetrag generate --timeout, ASSETRAG_GENERATION_TIMEOUT, the API's timeout_s) or try again later",
                timed_out=True,
                backend=self.name,
            )
        )

    def _unreachable(self, exc: Exception) -> Verdict:
        """The connection failed (retried)."""
        return Verdict(
            GenerationUnavailable(
                f"cannot reach the {self.label} API at {self.base_url or 'the default endpoint'}: {exc}",
                backend=self.name,
            ),
            retryable=True,
        )
