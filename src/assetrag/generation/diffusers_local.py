"""A local diffusers image-to-image pipeline from a checkpoint directory (nothing leaves the machine).

    gen = DiffusersGenerator("/models/sd-1.5")    # or $ASSETRAG_DIFFUSERS_CHECKPOINT
    result = gen.generate("the watch on a beach", refs, GenerationOptions(seed=7))

Image-to-image takes ONE init image: the first reference. Further references are not used (the
result's warnings list them), so `max_reference_images` is 1. The output size is `options.size`
("WIDTHxHEIGHT", multiples of 8) or the init image's size scaled to at most `max_side` pixels on
its long side; `options.aspect_ratio` centre-crops the init image first. Images are seeded
(`seed + i` for image i, a random seed reported in `metadata["seed"]` when none is given).
`options.extra` may hold `strength`, `num_inference_steps`, `guidance_scale`, `negative_prompt`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from assetrag.generation.backend import Backend, missing_module
from assetrag.generation.errors import (
    GenerationBlocked,
    GenerationOptionsError,
    GenerationUnavailable,
    GeneratorSetupError,
)
from assetrag.generation.options import parse_size
from assetrag.generation.retry import Stopwatch
from assetrag.generation.types import GenerationOptions, GenerationResult, Reference

BACKEND = "diffusers"
CHECKPOINT_ENV = "ASSETRAG_DIFFUSERS_CHECKPOINT"
ASPECT_RATIOS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16")
SIZE_RULE = "WIDTHxHEIGHT with both multiples of 8 (e.g. 512x512, 768x512)"
EXTRA_PARAMS = ("strength", "num_inference_steps", "guidance_scale", "negative_prompt")
MAX_IMAGES_PER_CALL = 8


def _size_ok(size: str) -> bool:
    dims = parse_size(size)
    return dims is not None and all(d >= 8 and d % 8 == 0 for d in dims)


def unavailable() -> str | None:
    """Why `DiffusersGenerator()` (checkpoint from the environment) cannot run here, or None."""
    raw = os.environ.get(CHECKPOINT_ENV)
    if not raw:
        return f"set {CHECKPOINT_ENV} on the server to a local diffusers pipeline directory"
    if not (Path(raw).expanduser() / "model_index.json").is_file():
        return f"{CHECKPOINT_ENV} on the server does not name a diffusers pipeline directory (no model_index.json)"
    missing = missing_module("torch", "diffusers")
    if missing:
        return f"install {missing} on the server (pip install 'assetrag[diffusers]')"
    return None


class _Timeout(Exception):
    pass


class DiffusersGenerator(Backend):
    """Generator backed by a local diffusers img2img pipeline (Stable Diffusion family)."""

    name = BACKEND
    label = "diffusers"
    external = False
    max_reference_images = 1
    aspect_ratios = ASPECT_RATIOS
    sizes: tuple[str, ...] = ("512x512", "768x512", "512x768", "768x768", "1024x1024")
    max_images_per_call = MAX_IMAGES_PER_CALL
    size_ok = staticmethod(_size_ok)
    size_rule = SIZE_RULE
    needs_reference = "image-to-image needs a reference image to start from; pass at least one"
    refuses_extra_references = False  # the first is the init image; the others are listed as not used

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        device: str = "auto",
        strength: float = 0.6,
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        max_side: int = 768,
    ) -> None:
        """`checkpoint`: a local directory holding `model_index.json` (no download is attempted)."""
        raw = checkpoint or os.environ.get(CHECKPOINT_ENV)
        if not raw:
            raise GeneratorSetupError(
                f"no diffusers checkpoint: pass checkpoint= or set {CHECKPOINT_ENV} to a local directory "
                "holding a diffusers pipeline (model_index.json)",
                backend=BACKEND,
            )
        self.checkpoint = Path(raw).expanduser()
        if not (self.checkpoint / "model_index.json").is_file():
            raise GeneratorSetupError(
                f"{self.checkpoint} is not a diffusers pipeline directory (no model_index.json); "
                "save one with pipeline.save_pretrained(dir)",
                backend=BACKEND,
            )
        self.model = self.checkpoint.name
        self.device = device
        self.strength = strength
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.max_side = max_side
        self._pipe: Any = None
        self._device: str | None = None

    def __repr__(self) -> str:
        return f"DiffusersGenerator(checkpoint={str(self.checkpoint)!r}, device={self.device!r})"

    def validate_options(self, options: GenerationOptions) -> None:
        super().validate_options(options)
        for key in ("strength",):
            value = options.extra.get(key)
            if value is not None and not 0 < float(value) <= 1:
                raise GenerationOptionsError(f"extra['strength'] must be in (0, 1], got {value}", backend=BACKEND)

    # -- pipeline ---------------------------------------------------------------------------------

    def _load(self) -> Any:
        if self._pipe is not None:
            return self._pipe
        try:
            import torch
            from diffusers import AutoPipelineForImage2Image, DiffusionPipeline
        except ImportError as exc:
            raise GeneratorSetupError(
                f"the diffusers backend needs torch and diffusers ({exc}); pip install diffusers", backend=BACKEND
            ) from exc
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        try:
            pipe = AutoPipelineForImage2Image.from_pretrained(str(self.checkpoint), dtype=dtype, local_files_only=True)
        except ValueError:
            # AutoPipeline knows the common families only; any pipeline taking `image=` still works.
            pipe = DiffusionPipeline.from_pretrained(str(self.checkpoint), dtype=dtype, local_files_only=True)
        except OSError as exc:
            raise GeneratorSetupError(f"cannot load the pipeline in {self.checkpoint}: {exc}", backend=BACKEND) from exc
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe, self._device = pipe, device
        return pipe

    def _target_size(self, init: Image.Image, options: GenerationOptions) -> tuple[int, int]:
        if options.size:
            dims = parse_size(options.size)
            assert dims is not None  # validated
            return dims
        w, h = init.size
        scale = min(1.0, self.max_side / max(w, h))
        return max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)

    # -- generate ---------------------------------------------------------------------------------

    def _generate(
        self, prompt: str, references: Sequence[Reference], opts: GenerationOptions, watch: Stopwatch
    ) -> GenerationResult:
        warnings = [f"init image: reference {references[0].id} ({references[0].label})"]
        if len(references) > 1:
            unused = ", ".join(f"{r.id} ({r.label})" for r in references[1:])
            warnings.append(f"image-to-image uses only the first reference; not used: {unused}")
        params: dict[str, Any] = {
            "strength": self.strength,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            **self._extra_params(opts, EXTRA_PARAMS, warnings),
        }

        init = references[0].image
        if opts.aspect_ratio:
            init = _crop_to_ratio(init, opts.aspect_ratio)
        size = self._target_size(init, opts)
        init = init.resize(size, Image.Resampling.LANCZOS)

        pipe = self._load()
        import torch

        seed = opts.seed if opts.seed is not None else random.randrange(2**31)
        generators = [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(opts.n)]

        def on_step_end(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if watch.elapsed > opts.timeout_s:
                raise _Timeout
            return kwargs

        try:
            with torch.inference_mode():
                output = pipe(
                    prompt=[prompt] * opts.n,
                    image=[init] * opts.n,
                    generator=generators,
                    output_type="pil",
                    callback_on_step_end=on_step_end,
                    **params,
                )
        except _Timeout:
            raise GenerationUnavailable(
                f"the local pipeline timed out: it ran past timeout_s={opts.timeout_s:g} s; raise it (assetrag "
                "generate --timeout, ASSETRAG_GENERATION_TIMEOUT, the API's timeout_s), lower num_inference_steps "
                "or the size",
                timed_out=True,
                backend=BACKEND,
            ) from None
        images = list(output.images)
        flagged = getattr(output, "nsfw_content_detected", None) or [False] * len(images)
        kept = [im for im, bad in zip(images, flagged, strict=False) if not bad]
        if not kept:
            raise GenerationBlocked(
                "the pipeline's safety checker flagged every image; rephrase the prompt or change the init image",
                reason="safety_checker",
                backend=BACKEND,
            )
        if len(kept) < len(images):
            warnings.append(f"the safety checker dropped {len(images) - len(kept)} of {len(images)} images")
        return self._result(
            prompt,
            references[:1],
            watch,
            kept,
            warnings=warnings,
            metadata={
                "seed": seed,
                "size": f"{size[0]}x{size[1]}",
                "device": self._device,
                "init_reference": references[0].id,
                **{k: v for k, v in params.items() if k != "negative_prompt"},
            },
        )


def _crop_to_ratio(image: Image.Image, ratio: str) -> Image.Image:
    """Centre crop of `image` with aspect `ratio` ("W:H")."""
    rw, rh = (int(x) for x in ratio.split(":"))
    w, h = image.size
    target = rw / rh
    if w / h > target:
        new_w = max(1, round(h * target))
        left = (w - new_w) // 2
        return image.crop((left, 0, left + new_w, h))
    new_h = max(1, round(w / target))
    top = (h - new_h) // 2
    return image.crop((0, top, w, top + new_h))
