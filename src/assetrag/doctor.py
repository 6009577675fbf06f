"""`assetrag doctor`: check the model, the store and the versions; say what to fix."""

from __future__ import annotations

import importlib.metadata as md
import platform
from dataclasses import dataclass

from assetrag.config import DEFAULT_CLIP_CHECKPOINT, Settings
from assetrag.errors import AssetragError


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; none raises."""
    checks = [
        Check(
            "versions",
            "ok",
            f"python {platform.python_version()}, assetrag {_version('assetrag')}, "
            f"torch {_version('torch')}, transformers {_version('transformers')}, pymilvus {_version('pymilvus')}, "
            f"milvus-lite {_version('milvus-lite')}",
        )
    ]
    try:
        from assetrag.embedding.device import describe

        checks.append(Check("device", "ok", describe()[1]))
    except Exception as exc:  # a broken torch install is exactly what doctor is for
        checks.append(Check("device", "fail", f"torch does not import: {exc}; reinstall torch==2.13.0"))

    checks.append(_runtime_check(settings))
    checks.append(_french_check())
    checks.append(_settings_check(settings))

    from assetrag.library import Library

    lib = Library(settings=settings)
    try:
        info = lib.stats()
        built = (
            f", built with {info['model']} (dim {info['dim']}); lexical search: {info['lexical']}"
            if info["exists"]
            else " (empty: not created yet)"
        )
        checks.append(
            Check(
                "store",
                "ok",
                f"{info['backend']} at {settings.uri}, library {settings.library!r}: {info['count']} assets{built}",
            )
        )
    except AssetragError as exc:
        checks.append(Check("store", "fail", str(exc)))
        info = None

    from assetrag.embedding import load_embedder

    try:
        load_embedder(f"clip:{DEFAULT_CLIP_CHECKPOINT}", device="cpu")
        checks.append(Check("clip", "ok", f"{DEFAULT_CLIP_CHECKPOINT} loads from the local cache"))
    except AssetragError as exc:
        checks.append(Check("clip", "warn", f"CLIP weights not available: {exc}"))
    try:
        emb = lib.embedder
        checks.append(Check("model", "ok", f"this library uses {emb.name} (dim {emb.dim})"))
    except AssetragError as exc:
        checks.append(Check("model", "fail", str(exc)))
    finally:
        lib.close()
    return checks


def _runtime_check(settings: Settings) -> Check:
    """Which runtime runs the model here, and why; onnxruntime's version; where exported graphs are cached."""
    from assetrag.embedding.graphs import cache_root
    from assetrag.embedding.runtime import choose_runtime, ort_version

    try:
        choice = choose_runtime(settings.runtime, settings.device)
    except AssetragError as exc:
        return Check("runtime", "fail", str(exc))
    return Check(
        "runtime",
        "ok",
        f"{choice.name} ({choice.reason}; --runtime {settings.runtime}, --quantize {settings.quantize}), "
        f"onnxruntime {ort_version()}, ONNX graph cache {cache_root(settings.cache_dir)}",
    )


def _french_check() -> Check:
    """Whether French queries get dictionary translation (FreeDict, read at run time, not shipped: GPL; and the
    shipped CLDR table)."""
    from assetrag.embedding.french import dictionary_note, find_dictionary, lexicon

    note = dictionary_note()
    if note:
        return Check("french", "warn", note)
    lex = lexicon()
    table = " and the CLDR emoji table" if lex is not None and lex.sources["cldr"] else ""
    return Check("french", "ok", f"French queries are translated with FreeDict ({find_dictionary()}){table}")


def _settings_check(settings: Settings) -> Check:
    """Each setting's value and where it came from (flag, environment, config file, default); secrets hidden."""
    parts = []
    for name, source in (settings.sources or {}).items():
        value = getattr(settings, name)
        shown = "(set)" if name == "token" and value else value
        parts.append(f"{name}={shown} ({source})")
    return Check("settings", "ok", "; ".join(parts) if parts else "defaults and environment (no sources recorded)")
