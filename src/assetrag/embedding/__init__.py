"""Embedding backends, chosen by a spec string.

Specs: `auto` (CLIP's default checkpoint when its weights are on this machine, else the offline
model, v2), `offline` (the current offline model, `OFFLINE_DEFAULT`: v2), `offline:v1` / `conse` (ConSE alone),
`offline:v2` / `offline-head` (ConSE + the trained alignment head), `offline:head` (the head alone, for
measurements), `clip` (default checkpoint), `clip:<dir or hub id>`, or a bare checkpoint directory or
`org/name` hub id. Every backend runs on ONNX Runtime or torch (`runtime`, see `assetrag.embedding.runtime`);
nothing here imports torch, and the offline model on ONNX Runtime never does once its graphs are cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assetrag.config import DEFAULT_CLIP_CHECKPOINT
from assetrag.embedding._runtime import looks_like_hub_id
from assetrag.embedding.base import Embedder, l2_normalise
from assetrag.embedding.runtime import check_quantize, choose_runtime
from assetrag.errors import ConfigError

__all__ = [
    "BACKENDS",
    "OFFLINE_DEFAULT",
    "Embedder",
    "RuntimeOptions",
    "l2_normalise",
    "load_embedder",
    "register_backend",
    "spec_for_name",
]

Announce = Callable[[str], None]


@dataclass(frozen=True)
class RuntimeOptions:
    """How a backend runs its model: `runtime` onnx | torch (already chosen), `quantize` auto | none | int8,
    `threads` (CPU threads for the model; None = every core), `announce` (one-line notices)."""

    runtime: str = "torch"
    quantize: str = "auto"
    threads: int | None = None
    announce: Announce | None = None

    def kwargs(self) -> dict[str, object]:
        return {"runtime": self.runtime, "quantize": self.quantize, "threads": self.threads, "announce": self.announce}


#: backend factory: (argument after "name:", or None; device, batch_size, allow_download, runtime options) -> Embedder
Factory = Callable[[str | None, str, int, bool, RuntimeOptions], Embedder]


#: what plain `offline` (and `auto` without CLIP) loads for a new library: v2 (ConSE + the trained head), better
#: than v1 on every labelled set (docs/quality.md, docs/offline-model.md). A library built with v1 stores v1's
#: name and reopens with it (`spec_for_name`); `offline:v1` / `conse` still ask for ConSE alone.
OFFLINE_DEFAULT = "v2"
OFFLINE_VERSIONS = ("v1", "v2", "head")


def _offline(
    arg: str | None, device: str, batch_size: int, allow_download: bool, opts: RuntimeOptions = RuntimeOptions()
) -> Embedder:
    version = (arg or OFFLINE_DEFAULT).strip().lower()
    if version == "v1":
        from assetrag.embedding.conse import ConseEmbedder

        return ConseEmbedder(device=device, batch_size=batch_size, **opts.kwargs())  # type: ignore[arg-type]
    if version in ("v2", "head"):
        from assetrag.embedding.head import HeadEmbedder

        return HeadEmbedder(combined=version == "v2", device=device, batch_size=batch_size, **opts.kwargs())
    raise ConfigError(
        f"unknown offline model version 'offline:{arg}'; use offline (= offline:{OFFLINE_DEFAULT}), "
        "offline:v1 (ConSE), offline:v2 (ConSE + trained head) or offline:head"
    )


def _conse(arg: str | None, device: str, batch_size: int, allow_download: bool, opts: RuntimeOptions) -> Embedder:
    if arg:
        raise ConfigError(f"'conse' takes no argument (got 'conse:{arg}'); use conse or offline:v1")
    return _offline("v1", device, batch_size, allow_download, opts)


def _offline_head(
    arg: str | None, device: str, batch_size: int, allow_download: bool, opts: RuntimeOptions
) -> Embedder:
    if arg:
        raise ConfigError(f"'offline-head' takes no argument (got 'offline-head:{arg}'); use offline:v2")
    return _offline("v2", device, batch_size, allow_download, opts)


def spec_for_name(model_name: str) -> str:
    """The load spec that reproduces a model name stored with a library (how old libraries keep their model)."""
    from assetrag.embedding.conse import NAME as CONSE_NAME
    from assetrag.embedding.head import NAME_COMBINED, NAME_HEAD

    known = {CONSE_NAME: "offline:v1", NAME_COMBINED: "offline:v2", NAME_HEAD: "offline:head"}
    if model_name in known:
        return known[model_name]
    if model_name.startswith("offline:"):
        return "offline"  # an offline model this version does not know: let the store say what differs
    return model_name


def _clip(
    arg: str | None, device: str, batch_size: int, allow_download: bool, opts: RuntimeOptions = RuntimeOptions()
) -> Embedder:
    from assetrag.embedding.clip import ClipEmbedder

    return ClipEmbedder(
        arg or DEFAULT_CLIP_CHECKPOINT,
        device=device,
        batch_size=batch_size,
        allow_download=allow_download,
        **opts.kwargs(),  # type: ignore[arg-type]
    )


#: the registry: spec prefix → factory. Add a backend with `register_backend`.
BACKENDS: dict[str, Factory] = {
    "offline": _offline,
    "conse": _conse,
    "offline-head": _offline_head,
    "clip": _clip,
}


def register_backend(prefix: str, factory: Factory) -> None:
    """Make `load_embedder("<prefix>")` / `("<prefix>:<arg>")` build an embedder with `factory`."""
    BACKENDS[prefix.lower()] = factory


def load_embedder(
    spec: str = "auto",
    *,
    device: str = "auto",
    batch_size: int = 32,
    torch_threads: int | None = None,
    announce: Announce | None = None,
    allow_download: bool = False,
    runtime: str = "auto",
    quantize: str = "auto",
    explain: bool = True,
) -> Embedder:
    """Build the embedder named by `spec` (see the module docstring).

    `auto` never touches the network. `allow_download` lets an explicit CLIP spec fetch from the
    hub (still off when HF_HUB_OFFLINE is set). `announce` receives one line when the offline model
    is used (unless `explain` is false: reopening a library built with it), and one when ONNX graphs are
    exported. `runtime` auto | onnx | torch, `quantize` auto | none |
    int8 (see `assetrag.embedding.runtime`); `torch_threads` is the model's CPU threads on either runtime.
    Raises `ModelUnavailableError` (weights missing) or `ConfigError` (bad spec/device/runtime).
    """
    say = announce or (lambda _line: None)
    if torch_threads is not None and torch_threads < 1:
        raise ConfigError(f"torch threads must be ≥ 1, got {torch_threads}")
    choice = choose_runtime(runtime, device)
    if torch_threads is not None and choice.name == "torch":
        import torch

        torch.set_num_threads(torch_threads)
    opts = RuntimeOptions(choice.name, check_quantize(quantize), torch_threads, say)
    text = (spec or "auto").strip()
    key, _, arg = text.partition(":")
    key = key.lower()

    if key == "auto" and not arg:
        return _auto(device, batch_size, say, opts)
    if key in BACKENDS:
        embedder = BACKENDS[key](arg or None, device, batch_size, allow_download, opts)
        if explain and key in ("offline", "conse", "offline-head"):
            say(
                f"Using the built-in offline model {embedder.name} ({_offline_blurb(embedder.name)}): it is "
                "much weaker than CLIP (use --model clip when CLIP weights are available)."
            )
        return embedder
    if Path(text).expanduser().is_dir() or looks_like_hub_id(text) or _looks_like_path(text):
        return _clip(text, device, batch_size, allow_download, opts)
    raise ConfigError(
        f"unknown model {spec!r}: use auto, offline, clip, clip:<checkpoint dir or hub id>, "
        "a checkpoint directory, or a hub id like openai/clip-vit-base-patch32"
    )


def _auto(device: str, batch_size: int, say: Announce, opts: RuntimeOptions) -> Embedder:
    from assetrag.embedding.clip import cached_locally, how_to_get_weights

    if cached_locally(DEFAULT_CLIP_CHECKPOINT):
        from assetrag.embedding.clip import ClipEmbedder
        from assetrag.errors import ModelUnavailableError

        try:
            return ClipEmbedder(
                DEFAULT_CLIP_CHECKPOINT,
                device=device,
                batch_size=batch_size,
                allow_download=False,
                **opts.kwargs(),  # type: ignore[arg-type]
            )
        except ModelUnavailableError as exc:
            reason = f"CLIP ({DEFAULT_CLIP_CHECKPOINT}) is cached but did not load ({exc})"
    else:
        reason = f"CLIP weights ({DEFAULT_CLIP_CHECKPOINT}) are not on this machine"
    embedder = _offline(None, device, batch_size, False, opts)
    say(
        f"{reason}; using the built-in offline model {embedder.name} ({_offline_blurb(embedder.name)}), "
        f"which is much weaker than CLIP. To use CLIP, {how_to_get_weights()}."
    )
    return embedder


def _offline_blurb(name: str) -> str:
    if "head" in name:
        return "an ImageNet classifier plus a small head trained on clipart and emoji"
    return "it only knows ImageNet's 1,000 classes"


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~", "\\")) or _is_windows_drive(text)


def _is_windows_drive(text: str) -> bool:
    return len(text) > 2 and text[1] == ":" and text[0].isalpha() and text[2] in "/\\"
