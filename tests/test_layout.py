"""The package's layout rules, checked on its own imports (docs/architecture.md, "Rules").

Data flows one way — cli/server → Library → rag → ingest/search → embedding/store/generation → base — so an
import may only point to a lower layer (or stay inside its own room); the import graph has no circle; only
`store/` imports pymilvus or writes Milvus filter syntax; only `embedding/` imports torch, onnxruntime or
transformers; only `generation/` the vendor SDKs; only `server/` FastAPI; nothing above `Library` imports
`store`.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "assetrag"

#: room → layer (an import may point only to a lower layer, or inside its own room)
LAYERS = {
    "errors": 0,
    "config": 1,
    "objects": 1,  # object storage (s3://, gs://, az://) through fsspec
    "concurrency": 1,
    "progress": 1,
    "decode": 1,
    "render": 1,
    "words": 1,  # the words of an asset and a query (both lexical search paths)
    "video": 2,
    "store": 2,
    "embedding": 2,
    "generation": 2,
    "ingest": 3,
    "search": 3,
    "rag": 4,
    "library": 5,
    "evaluate": 6,
    "doctor": 6,
    "server": 7,
    "cli": 8,  # `assetrag serve` starts the server
    "__init__": 9,  # the package's public names
}
#: third-party packages only these rooms may import (torch: also the local diffusers generator, which runs a
#: torch pipeline of its own)
OWNED = {
    "pymilvus": ("store",),
    "milvus_lite": ("store",),
    "torch": ("embedding", "generation"),
    "torchvision": ("embedding",),
    "onnxruntime": ("embedding",),
    "onnx": ("embedding",),
    "transformers": ("embedding",),
    "sentence_transformers": ("embedding",),
    "google": ("generation",),
    "openai": ("generation",),
    "diffusers": ("generation",),
    "fastapi": ("server",),
    "starlette": ("server",),
    "uvicorn": ("server",),
}
#: Milvus filter syntax: only `store/` writes it
FILTER_SYNTAX = re.compile(r"array_contains|json_contains|\blike \{|\bid in \[|== \{quote|\bquote\(")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in `path`, at any depth, except `if TYPE_CHECKING:` ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:  # `from assetrag import rag` imports the module assetrag.rag
                full = f"{base}.{a.name}"
                out.append((full if _is_module(full) else base, node.lineno))
    return out


def _is_module(name: str) -> bool:
    if not name.startswith("assetrag"):
        return False
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def _graph() -> dict[str, list[tuple[str, int]]]:
    return {
        _module_name(p): [(m, line) for m, line in _imports(p) if m.startswith("assetrag")]
        for p in sorted(SRC.rglob("*.py"))
    }


def layout_summary() -> dict[str, int]:
    """Rooms (top-level modules and packages), floors (distinct layers in use) and arrows (room → room)."""
    graph = _graph()
    rooms = {_room(m) for m in graph}
    arrows = {(_room(m), _room(t)) for m, targets in graph.items() for t, _ in targets if _room(t) != _room(m)}
    return {"rooms": len(rooms), "floors": len({LAYERS.get(r, -1) for r in rooms}), "arrows": len(arrows)}


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in _graph()}
    assert rooms <= set(LAYERS), f"new top-level modules need a layer in LAYERS: {sorted(rooms - set(LAYERS))}"


def test_imports_only_point_down():
    bad = []
    for module, targets in _graph().items():
        src = _room(module)
        for target, line in targets:
            dst = _room(target)
            if dst != src and LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{module}:{line} imports {target} ({src} layer {LAYERS[src]} → {dst} layer {LAYERS[dst]})")
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    graph = {m: sorted({t for t, _ in targets if t in _graph_modules()}) for m, targets in _graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph.get(m, []):
            if t == m or _is_parent(t, m):  # a submodule importing names through its own package
                continue
            if state.get(t) == 1:
                cycle = [*stack[stack.index(t) :], t]
                pytest.fail("import circle: " + " → ".join(cycle))
            if state.get(t) is None:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def _is_parent(pkg: str, module: str) -> bool:
    return module.startswith(pkg + ".")


def _graph_modules() -> set[str]:
    return {_module_name(p) for p in SRC.rglob("*.py")}


@pytest.mark.parametrize("package,owner", sorted(OWNED.items()))
def test_third_party_packages_have_owners(package, owner):
    bad = []
    for p in sorted(SRC.rglob("*.py")):
        room = _room(_module_name(p))
        if room in owner:
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n == package or n.startswith(package + ".") for n in names):
                bad.append(f"{p.relative_to(SRC)}:{node.lineno}")
    assert not bad, f"only {'/, '.join(owner)}/ may import {package}: {bad}"


def test_only_store_writes_filter_syntax():
    bad = []
    for p in sorted(SRC.rglob("*.py")):
        if _room(_module_name(p)) == "store":
            continue
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if FILTER_SYNTAX.search(code) and not code.strip().startswith(('"', "'")):
                bad.append(f"{p.relative_to(SRC)}:{i}: {line.strip()}")
    assert not bad, "Milvus filter syntax outside store/ (use assetrag.store.filters):\n" + "\n".join(bad)


def test_nothing_above_the_library_reaches_the_store():
    above = {room for room, layer in LAYERS.items() if layer > LAYERS["library"]} | {"rag"}
    bad = [
        f"{m}:{line} imports {t}"
        for m, targets in _graph().items()
        if _room(m) in above and _room(m) != "__init__"
        for t, line in targets
        if _room(t) == "store"
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The walker sees an upward import, a circle and a stray pymilvus import when there is one."""
    fake = tmp_path / "assetrag"
    (fake / "store").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "store" / "__init__.py").write_text("from assetrag import library\n")
    (fake / "library.py").write_text("import pymilvus\nfrom assetrag.store import x\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    with pytest.raises(AssertionError, match="store layer 2 → library layer 5"):
        test_imports_only_point_down()
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circle()
    with pytest.raises(AssertionError, match="only store/ may import pymilvus"):
        test_third_party_packages_have_owners("pymilvus", ("store",))


def test_a_search_process_does_not_load_what_only_ingest_or_eval_need():
    """`assetrag search` starts by importing the CLI: the ingest stages, bulk loading, evaluation and the progress
    bar are loaded when used, not by every command (a warm search's start-up time is a target)."""
    import subprocess
    import sys

    code = (
        "import sys; import assetrag.cli; "
        "print([m for m in ('assetrag.ingest', 'assetrag.store.bulk', 'assetrag.evaluate', 'rich.progress', "
        "'torch', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
