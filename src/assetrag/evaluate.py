"""Retrieval quality: labelled queries → recall@k, MRR and nDCG@10, per query and overall.

A labelled query set is JSONL (one object a line) or CSV (a header row), with per query:
- `query` (or `text`): the words to search for, and/or `image`: a query image (relative to the root);
- what is relevant, any of: `relevant`: asset paths relative to the root (a list; in CSV separated by `;` or
  `|`), `relevant_tag`: every asset with that tag, `relevant_collection`: every asset of that collection;
- optionally `id` (a name for the query in reports).

Paths are relative to `root` (by default the folder of the query file). A stored asset is relevant when one of
its paths (byte-identical copies count as one asset) is a relevant path: the path itself or, when the library
was ingested from another place, any stored path that ends with the same relative path.

Metrics (binary relevance, over the top `depth` results): recall@k = share of the relevant assets in the top
k; MRR = mean of 1 / rank of the first relevant asset (0 when none is in the top `depth`); nDCG@10 with gain
1 per relevant asset, normalised by the best possible ordering. Overall numbers are means over queries.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assetrag.config import Settings
from assetrag.embedding.base import Embedder
from assetrag.errors import ConfigError, QueryError
from assetrag.library import Library
from assetrag.search import DEFAULT_MODE, DEFAULT_RERANK, DEFAULT_RERANK_N, Query, template_list
from assetrag.search.rerank import OFF as _OFF
from assetrag.search.rerank import parse_rerank

KS = (1, 5, 10)
NDCG_AT = 10
DEFAULT_DEPTH = 100


@dataclass
class LabelledQuery:
    """One query of a labelled set, and what makes an asset relevant to it."""

    id: str
    text: str | None = None
    image: str | None = None  # absolute path
    relevant: list[str] = field(default_factory=list)  # paths relative to the root
    relevant_tag: str | None = None
    relevant_collection: str | None = None


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value)
    sep = ";" if ";" in text else "|"
    return [p.strip() for p in text.split(sep) if p.strip()]


def _parse(obj: dict[str, Any], root: Path, where: str) -> LabelledQuery:
    text = obj.get("query") or obj.get("text") or None
    image = obj.get("image") or None
    if not (text and str(text).strip()) and not image:
        raise QueryError(f"{where}: a labelled query needs 'query' (text) or 'image'")
    relevant = [p.replace("\\", "/") for p in _split(obj.get("relevant"))]
    tag = obj.get("relevant_tag") or None
    coll = obj.get("relevant_collection") or None
    if not (relevant or tag or coll):
        raise QueryError(f"{where}: say what is relevant: 'relevant' (paths), 'relevant_tag' or 'relevant_collection'")
    image_path = None
    if image:
        p = Path(str(image)).expanduser()
        image_path = str(p if p.is_absolute() else (root / p))
    name = str(obj.get("id") or text or os.path.basename(str(image)))
    return LabelledQuery(
        name, str(text).strip() if text else None, image_path, relevant, str(tag) if tag else None, coll
    )


def load_queries(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[LabelledQuery]:
    """The labelled queries of a JSONL or CSV file (see the module doc); `root` defaults to its folder."""
    path = Path(path)
    if not path.is_file():
        raise QueryError(f"query file {path} does not exist")
    base = Path(root) if root is not None else path.parent
    out: list[LabelledQuery] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                out.append(_parse({k.strip(): v for k, v in row.items() if k}, base, f"{path}:{i}"))
    else:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QueryError(f"{path}:{i}: not JSON ({exc.msg}); one JSON object per line") from exc
            if not isinstance(obj, dict):
                raise QueryError(f"{path}:{i}: each line must be a JSON object")
            out.append(_parse(obj, base, f"{path}:{i}"))
    if not out:
        raise QueryError(f"{path} holds no queries")
    return out


# -- metrics -------------------------------------------------------------------------------------------------


def query_metrics(ranks: Sequence[int], n_relevant: int, ks: Sequence[int] = KS) -> dict[str, float]:
    """Metrics for one query from the 1-based ranks at which its relevant assets were found."""
    found = sorted(r for r in ranks if r > 0)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = (sum(1 for r in found if r <= k) / n_relevant) if n_relevant else 0.0
    out["mrr"] = 1.0 / found[0] if found else 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in found if r <= NDCG_AT)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n_relevant, NDCG_AT)))
    out[f"ndcg@{NDCG_AT}"] = dcg / ideal if ideal else 0.0
    return out


def mean_metrics(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(rows)
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


# -- running a configuration ---------------------------------------------------------------------------------


@dataclass
class QueryResult:
    id: str
    relevant: int  # relevant assets in the library
    ranks: list[int]  # where they were found (1-based), best first
    top: list[str]  # the first results' paths
    metrics: dict[str, float]
    missing: list[str] = field(default_factory=list)  # relevant paths that are not in the library
    understood: str | None = None


@dataclass
class EvalReport:
    """One configuration's results on a labelled set."""

    config: dict[str, Any]
    queries: list[QueryResult]
    overall: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _TextCache:
    """The library's embedder with its text embeddings computed in batches up front and remembered."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self._memo: dict[str, np.ndarray] = {}

    def prefill(self, texts: Iterable[str], batch: int = 64) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            for t, v in zip(chunk, self.inner.embed_texts(chunk), strict=True):
                self._memo[t] = v

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.prefill(texts)
        return np.stack([self._memo[t] for t in texts]) if texts else self.inner.embed_texts(texts)

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        return self.inner.embed_images(images)


class _Catalogue:
    """Every stored asset's id, paths, tags and collection, to resolve what is relevant."""

    def __init__(self, lib: Library) -> None:
        self.rows = list(lib.iterate(("id", "paths", "tags", "collection")))
        self.by_path: dict[str, str] = {}
        for r in self.rows:
            for p in r.get("paths") or []:
                self.by_path[os.path.normpath(p)] = r["id"]

    def relevant(self, q: LabelledQuery, root: Path) -> tuple[set[str], list[str]]:
        ids: set[str] = set()
        missing: list[str] = []
        for rel in q.relevant:
            absolute = os.path.normpath(str(root / rel))
            rid = self.by_path.get(absolute)
            if rid is None:  # ingested from elsewhere: match the end of the stored path
                tail = os.sep + os.path.normpath(rel)
                rid = next((i for p, i in self.by_path.items() if p.endswith(tail)), None)
            if rid is None:
                missing.append(rel)
            else:
                ids.add(rid)
        for r in self.rows:
            if (q.relevant_tag and q.relevant_tag in (r.get("tags") or [])) or (
                q.relevant_collection and r.get("collection") == q.relevant_collection
            ):
                ids.add(r["id"])
        return ids, missing


def evaluate(
    lib: Library,
    queries: Sequence[LabelledQuery],
    *,
    root: str | os.PathLike[str],
    mode: str = DEFAULT_MODE,
    templates: str | Sequence[str] | None = None,
    understand: bool = False,
    depth: int = DEFAULT_DEPTH,
    label: str | None = None,
    lang: str | None = None,
    rerank: str | None = DEFAULT_RERANK,
    rerank_n: int = DEFAULT_RERANK_N,
) -> EvalReport:
    """Run every query against `lib` with one search configuration and score the results (`lang`: the queries'
    language, see `Query.lang`; `rerank`, `rerank_n`: re-ranking of the top-N, see `Query.rerank`)."""
    root = Path(root)
    t0 = time.perf_counter()
    catalogue = _Catalogue(lib)
    embedder = _TextCache(lib.embedder)
    results: list[QueryResult] = []
    understood_by_query = {q.id: lib.understand(q.text) if understand and q.text else None for q in queries}
    texts = [(u.text if (u := understood_by_query[q.id]) else q.text or "").strip() for q in queries]
    forms = template_list(templates)
    embedder.prefill([f.format(t) for t in texts if t for f in forms] or [t for t in texts if t])
    how = dict(
        k=depth, mode=mode, templates=templates, understand=understand, lang=lang, rerank=rerank, rerank_n=rerank_n
    )
    for q in queries:
        relevant, missing = catalogue.relevant(q, root)
        u = understood_by_query[q.id]
        understood = u.describe() if u else None
        hits = lib.query(Query(text=q.text, image=q.image, **how), embedder=embedder)
        ranks = [h.rank for h in hits if h.id in relevant]
        results.append(
            QueryResult(
                q.id,
                len(relevant),
                ranks,
                [h.path for h in hits[:3]],
                query_metrics(ranks, len(relevant)),
                missing,
                understood,
            )
        )
    scored = [r for r in results if r.relevant]
    config = {
        "label": label,
        "model": embedder.name,
        "mode": mode,
        "templates": templates if isinstance(templates, str) or templates is None else list(templates),
        "understand": understand,
        "lang": lang,
        "rerank": rerank,
        "rerank_n": rerank_n if rerank else None,
        "library": lib.settings.library,
        "assets": lib.count(),
        "depth": depth,
    }
    return EvalReport(config, results, mean_metrics(r.metrics for r in scored), time.perf_counter() - t0)


# -- several configurations side by side (`assetrag eval --compare`) -------------------------------------------

#: the keys a configuration may set
CONFIG_KEYS = ("model", "mode", "templates", "understand", "lang", "rerank", "rerank_n", "label")


def parse_config(spec: str, base: dict[str, Any]) -> dict[str, Any]:
    """`model=offline,mode=vector,templates=photo,understand=off` → a configuration (unset keys: `base`)."""
    cfg = dict(base, label=None)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in CONFIG_KEYS:
            raise ConfigError(
                f"--compare takes key=value pairs with keys {', '.join(CONFIG_KEYS)}, e.g. 'mode=vector' or "
                f"'model=offline,templates=photo' (got {part!r})"
            )
        value = value.strip()
        if key == "understand":
            cfg[key] = value.lower() in ("1", "on", "yes", "true")
        elif key == "templates":
            cfg[key] = None if value.lower() in _OFF else value
        elif key == "rerank":
            cfg[key] = parse_rerank(value)
        elif key == "rerank_n":
            if not value.isdigit():
                raise ConfigError(f"--compare rerank_n takes a number of candidates (got {value!r})")
            cfg[key] = int(value)
        else:
            cfg[key] = value
    return cfg


def describe_config(c: dict[str, Any]) -> str:
    """A configuration's short name for tables: its label, else what differs from the defaults."""
    if c.get("label"):
        return str(c["label"])
    parts = (
        str(c["model"]).removeprefix("offline:"),
        c["mode"],
        f"templates={c['templates']}" if c.get("templates") else "",
        "understand" if c.get("understand") else "",
        f"lang={c['lang']}" if c.get("lang") not in (None, "auto") else "",
        f"rerank={c['rerank']}" + (f"@{c['rerank_n']}" if c.get("rerank_n") != DEFAULT_RERANK_N else "")
        if c.get("rerank")
        else "",
    )
    return " · ".join(x for x in parts if x)


def compare(
    settings: Settings,
    queries: Sequence[LabelledQuery],
    configs: Sequence[dict[str, Any]],
    *,
    root: str | os.PathLike[str],
    ingest: bool = False,
    depth: int = DEFAULT_DEPTH,
    announce: Callable[[str], None] | None = None,
) -> list[EvalReport]:
    """Evaluate each configuration (see `parse_config`). Configurations with another model than the first use
    their own library (`<library>_<model slug>`, a name a Milvus server accepts), ingested from `root` when
    `ingest`; each model is loaded once."""
    reports = []
    first_model = None
    embedders: dict[str, Any] = {}
    say = announce or (lambda _msg: None)
    for cfg in configs:
        run_settings = replace(settings, model=cfg["model"])
        if first_model is not None and cfg["model"] != first_model:
            slug = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in cfg["model"]).strip("_")[:40]
            run_settings = replace(run_settings, library=f"{settings.library}_{slug}")
        first_model = first_model or cfg["model"]
        with Library(
            settings=run_settings,
            announce=say if cfg["model"] not in embedders else None,
            embedder=embedders.get(cfg["model"]),
        ) as lib:
            if ingest:
                report = lib.ingest(root)
                say(f"ingested {root} into library {run_settings.library!r}: {report.added} new")
            elif not lib.exists():
                raise ConfigError(f"library {run_settings.library!r} is empty; ingest the assets first or add --ingest")
            embedders[cfg["model"]] = lib.embedder
            reports.append(
                evaluate(
                    lib,
                    queries,
                    root=root,
                    mode=cfg["mode"],
                    templates=cfg["templates"],
                    understand=cfg["understand"],
                    depth=depth,
                    label=cfg["label"],
                    lang=cfg["lang"],
                    rerank=cfg["rerank"],
                    rerank_n=cfg["rerank_n"],
                )
            )
    return reports
