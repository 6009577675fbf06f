"""`Library`: the Python API, and the only door to the store for everything above it (CLI, server, evaluate,
rag). The CLI and the server are thin layers over it.

from assetrag import Library
lib = Library("assets.db")
lib.ingest("photos/")
lib.search("a golden watch", k=3)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from assetrag.concurrency import Serialised
from assetrag.config import Settings
from assetrag.embedding.base import Embedder
from assetrag.errors import ModelMismatchError, QueryError, StoreError
from assetrag.progress import ProgressSink
from assetrag.search import (
    DEFAULT_MODE,
    DEFAULT_RERANK,
    DEFAULT_RERANK_N,
    Query,
    SearchHit,
    SearchResult,
    Understanding,
    load_query_image,
    search,
    understand_query,
)
from assetrag.search.lexical import invalidate as invalidate_lexical
from assetrag.search.lexical import lexical_path
from assetrag.store import SCALAR_FIELDS, Store
from assetrag.store import filters as F
from assetrag.store.schema import MEDIA_VIDEO_FRAME

if TYPE_CHECKING:  # the ingest package loads when something is ingested, not for a search
    from assetrag.ingest import IngestReport
    from assetrag.store.bulk import BulkStage

#: perceptual-hash (dHash, `decode.perceptual_hash`) distance, in bits of 64, up to which two assets are
#: near-duplicates. benchmarks/near_duplicates.py (docs/benchmarks.md): at 10 it keeps every resized, re-encoded,
#: overlaid and colour-shifted copy and 97 % of 5 % crops; its only false matches there are the same drawing
#: recoloured (distinct products a grey-level hash cannot tell apart).
NEAR_DUPLICATE_DISTANCE = 10
#: cosine similarity from which two assets are listed as embedding look-alikes, per model: the lowest threshold
#: at which benchmarks/near_duplicates.py finds at most 5 % of its matches between distinct images. A model not
#: listed gets no look-alike list unless the caller gives a threshold. The offline model has none: its best
#: precision there is 0.76 (at 0.99, recall 0.45) — it puts a red pump and a leather boot at 0.976, a teddy bear
#: and a woman in a green dress at 0.959 — so its look-alikes are noise at any threshold; hashes do the work.
DUPLICATE_COSINE: dict[str, float] = {}
DUPLICATES_DOC = "exact copies, near-duplicates by perceptual hash, look-alikes by calibrated embedding similarity"


class Library:
    """An image library: one Milvus collection plus the model that embeds it.

    Nothing heavy happens at construction: the store opens on first use and the model loads only when
    something must be embedded. With `model="auto"` an existing library reopens with the model it was
    built with.
    """

    def __init__(
        self,
        uri: str | os.PathLike[str] | None = None,
        *,
        library: str | None = None,
        model: str | None = None,
        settings: Settings | None = None,
        announce: Callable[[str], None] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        overrides: dict[str, Any] = {"library": library, "model": model}
        if uri is not None:
            overrides["uri"] = os.fspath(uri)
        if settings is None:
            settings = Settings.from_env(**overrides)
        else:
            from dataclasses import replace

            settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
            settings.validate()  # e.g. a library name a Milvus server would refuse
        self.settings = settings
        self._announce = announce or (lambda _msg: None)
        self._store: Store | None = None
        self._embedder = embedder
        self._locks: tuple[threading.RLock, threading.RLock] | None = None

    # -- lazily opened parts ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            s = self.settings
            # the index a new library gets (`--index`); an existing one keeps its own (`assetrag index` rebuilds)
            self._store = Store(s.uri, s.library, token=s.token, db_name=s.db_name, index=s.index)
            if self._locks is not None:
                self._store.client = Serialised(self._store.client, self._locks[0])
        return self._store

    def serialise(self, store_lock: threading.RLock, model_lock: threading.RLock) -> None:
        """Make this Library safe to share between threads: every Milvus client call holds `store_lock`, every
        model call `model_lock` (the Milvus Lite client and tokenizers are not thread-safe). Call by call, so a
        long ingest does not hold up searches for its whole run."""
        self._locks = (store_lock, model_lock)
        if self._store is not None and not isinstance(self._store.client, Serialised):
            self._store.client = Serialised(self._store.client, store_lock)
        if self._embedder is not None and not isinstance(self._embedder, Serialised):
            self._embedder = Serialised(self._embedder, model_lock)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from assetrag.embedding import load_embedder

            spec = self.settings.model
            built = self.store.model_info()
            if spec == "auto" and built is not None:
                spec = _spec_for(built[0])
            emb: Embedder = load_embedder(
                spec,
                device=self.settings.device,
                batch_size=self.settings.batch_size,
                torch_threads=self.settings.torch_threads,
                announce=self._announce,
                runtime=self.settings.runtime,
                quantize=self.settings.quantize,
                explain=built is None,  # a library built with the offline model: said when it was built
            )
            if self._locks is not None:
                emb = Serialised(emb, self._locks[1])  # type: ignore[assignment]
            self._embedder = emb
            if self.store.model_info() is not None:
                self._ensure(emb)  # refuses another model
        return self._embedder

    def _ensure(self, emb: Embedder) -> None:
        """Create the collection for `emb`, or check the library was built with it (with the spec to use)."""
        try:
            self.store.ensure(emb.name, emb.dim)
        except ModelMismatchError as exc:
            if not exc.built_model:
                raise
            raise ModelMismatchError(
                f"{exc} (--model {_spec_for(exc.built_model)} loads it)",
                library=exc.library,
                built_model=exc.built_model,
                built_dim=exc.built_dim,
                model=exc.model,
                dim=exc.dim,
            ) from exc

    def _model_kwargs(self) -> dict[str, Any]:
        """`load_embedder` arguments that rebuild this library's model elsewhere (a Ray actor)."""
        spec = self.settings.model
        built = self.store.model_info()
        if spec == "auto" and built is not None:
            spec = _spec_for(built[0])
        elif spec == "auto" and self._embedder is not None:
            spec = _spec_for(self._embedder.name)
        return {
            "spec": spec,
            "device": self.settings.device,
            "batch_size": self.settings.batch_size,
            "torch_threads": self.settings.torch_threads,
            "runtime": self.settings.runtime,
            "quantize": self.settings.quantize,
        }

    def _ready_embedder(self) -> Embedder:
        emb = self.embedder
        self._ensure(emb)
        return emb

    # -- reads: the store's contents for the layers above -------------------------------------------

    def exists(self) -> bool:
        """True once the library has been created (its first asset stored)."""
        return self.store.model_info() is not None

    def count(self) -> int:
        return self.store.count() if self.exists() else 0

    def iterate(self, fields: Sequence[str] = SCALAR_FIELDS) -> Iterator[dict[str, Any]]:
        """Every stored asset's `fields` (any number of assets; read in batches)."""
        if self.exists():
            yield from self.store.iterate(tuple(fields))

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of `ids` (missing ids are left out)."""
        if not ids or not self.exists():
            return {}
        rows = self.store.get(list(ids), ("id", "vector"))
        return {r["id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def page(
        self,
        *,
        collection: str | Sequence[str] | None = None,
        tags: Sequence[str] = (),
        source: str | None = None,
        media: str | None = None,
        limit: int = 24,
        offset: int = 0,
    ) -> tuple[int, list[SearchHit]]:
        """(how many assets pass the filters, one page of them with score 1.0): browsing without a query."""
        if not self.exists():
            return 0, []
        expr = Query(collection=collection or None, tags=tags, source=source, media=media).filter()
        total = int(self.store.query(expr, ("count(*)",))[0]["count(*)"])
        rows = self.store.query(expr, SCALAR_FIELDS, limit=limit, offset=offset) if offset < total else []
        return total, [SearchHit.from_fields(offset + i + 1, r["id"], 1.0, r) for i, r in enumerate(rows)]

    def facets(self) -> dict[str, dict[str, int]]:
        """How many assets each collection, tag and source has."""
        return self.store.facets()

    def rebuild_index(self, kind: str | None = None) -> dict[str, Any]:
        """(Re)build the vector index over everything stored (`kind`: hnsw | flat | ivf_flat | autoindex | auto;
        None: the type it has). Blocks until it is built."""
        return self.store.rebuild_index(kind)

    # -- operations -------------------------------------------------------------------------------

    def ingest(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        collection: str | None = None,
        tags: Sequence[str] = (),
        prune: bool = False,
        progress: ProgressSink | None = None,
        pipeline: str | None = None,
        max_delete: int | str | None = None,
        force: bool = False,
        dry_run: bool = False,
        follow_symlinks: bool = False,
        engine: str = "local",
        address: str | None = None,
        bulk: str | None = None,
        bulk_stage: str | None = None,
    ) -> IngestReport:
        """Add/refresh every image under `paths` (folders, files, or bucket prefixes `s3://bucket/prefix`,
        `gs://…`, `az://…`); see `assetrag.ingest`. `engine`: local | ray (read, decode and embed on a Ray
        cluster: `address` None starts a local one, `auto` / `ray://host:10001` joins one). `pipeline`:
        auto | simple | fast (default: the settings', auto = fast on CUDA).

        `prune`: take off stored files gone from disk — only under roots listed in this run, and at most
        `max_delete` assets (N, or P% of the library; default 10%); a missing, unreadable or empty root, or a
        prune over the limit, is held back and said in `report.refused` (the rest of the run still happens)
        unless `force`. `dry_run`: change nothing, report what would be pruned (`report.would_prune`).
        `follow_symlinks`: also ingest files whose real location is outside `paths` (by default such a
        symbolic link is reported, not read). `bulk`: auto | on | off (default: the settings') — new rows
        staged as Parquet in `bulk_stage` (default: the settings') and loaded by the server's bulk insert
        instead of upserts (`assetrag.store.bulk`; auto: a server and at least `bulk_threshold` files to read)."""
        from assetrag.ingest import Ingestor, RayOptions

        roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        ingestor = Ingestor(
            self.store,
            self._ready_embedder,
            batch_size=self.settings.batch_size,
            workers=self.settings.workers,
            progress=progress,
            pipeline=pipeline or self.settings.pipeline,
            device=self.settings.device,
            model_threads=self.settings.torch_threads,
            engine=engine,
            ray=RayOptions(address=address, model=self._model_kwargs()) if engine == "ray" else None,
            bulk=bulk or self.settings.bulk,
            bulk_stage=self._bulk_stage(bulk_stage),
            bulk_threshold=self.settings.bulk_threshold,
        )
        try:
            return ingestor.run(
                [os.fspath(p) for p in roots],
                collection=collection,
                tags=tags,
                prune=prune,
                max_delete=max_delete,
                force=force,
                dry_run=dry_run,
                follow_symlinks=follow_symlinks,
            )
        finally:
            invalidate_lexical(self.store)

    def _bulk_stage(self, location: str | None) -> BulkStage | None:
        from assetrag.store.bulk import BulkStage  # pyarrow: only an ingest that may bulk-load pays for it

        location = location or self.settings.bulk_stage
        return BulkStage(location, self.settings.bulk_server_path) if location else None

    def search(
        self,
        text: str | None = None,
        *,
        image: str | Path | Image.Image | None = None,
        k: int = 10,
        collection: str | Sequence[str] | None = None,
        tags: Sequence[str] = (),
        source: str | None = None,
        where: str | None = None,
        min_score: float | None = None,
        text_weight: float = 0.5,
        offset: int = 0,
        mode: str = DEFAULT_MODE,
        templates: str | Sequence[str] | None = None,
        understand: bool = False,
        lang: str | None = None,
        rerank: str | None = DEFAULT_RERANK,
        rerank_n: int = DEFAULT_RERANK_N,
        group_videos: bool = False,
        media: str | None = None,
    ) -> SearchResult:
        """Top-k assets for a text and/or image query, best first (`mode`, `templates`, `understand`, `lang`,
        `rerank`, `rerank_n`, `group_videos`, `media`: see `assetrag.search.Query`). A video appears once per
        matching keyframe (`hit.time`), or once at its best moment with `group_videos`. The result is a list
        of hits that also says what was understood and which text encoder was used."""
        return self.query(
            Query(
                text=text,
                image=image,
                k=k,
                offset=offset,
                collection=collection,
                tags=tags,
                source=source,
                where=where,
                min_score=min_score,
                text_weight=text_weight,
                mode=mode,
                templates=templates,
                understand=understand,
                lang=lang,
                rerank=rerank,
                rerank_n=rerank_n,
                group_videos=group_videos,
                media=media,
            )
        )

    def understand(self, text: str) -> Understanding:
        """The collection / tag / year filters that `understand=True` would read from `text`."""
        if not self.exists():
            return Understanding(text, text)
        return understand_query(self.store, text)

    def query(self, q: Query, *, embedder: Embedder | None = None) -> SearchResult:
        """Run a prepared `Query` (`embedder`: embed the query with this one instead — the same model, e.g. one
        that remembers text embeddings across many queries)."""
        q.validate()
        if not self.exists():
            return SearchResult(understood=Understanding(q.text, q.text) if q.understand and q.has_text else None)
        try:
            emb = self._ready_embedder()
            return search(self.store, embedder or emb, q)
        except StoreError as exc:
            if q.where:
                raise QueryError(f"the filter {q.where!r} was refused by Milvus: {exc}") from exc
            raise

    def similar(self, asset_id: str, *, k: int = 10, **filters: Any) -> list[SearchHit]:
        """Assets most like the stored asset `asset_id` (itself excluded)."""
        vec = self.vectors([asset_id]).get(asset_id)
        if vec is None:
            raise QueryError(f"no asset with id {asset_id!r} in library {self.settings.library!r}")
        hits = self.query(Query(vector=vec, k=k + 1, **filters))
        out = [h for h in hits if h.id != asset_id][:k]
        for i, h in enumerate(out):
            h.rank = i + 1
        return out

    def get(self, asset_id: str) -> SearchHit | None:
        """The stored asset with this id (score 1.0), or None."""
        if not self.exists():
            return None
        rows = self.store.get([asset_id], SCALAR_FIELDS)
        return SearchHit.from_fields(1, rows[0]["id"], 1.0, rows[0]) if rows else None

    def embed_image(self, image: str | Path | Image.Image) -> np.ndarray:
        """The library model's embedding of one image (L2-normalised)."""
        return self.embedder.embed_images([load_query_image(image)])[0]

    def add_image(
        self,
        path: str | os.PathLike[str],
        *,
        collection: str,
        tags: Sequence[str] = (),
        source: str = "ingested",
        lineage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store one image with explicit fields (how generated images come back as `synthetic`)."""
        from assetrag.ingest import add_file

        try:
            return add_file(
                self.store,
                self.embedder,
                path,
                collection=collection,
                tags=tags,
                source=source,
                lineage=lineage,
                metadata=metadata,
            )
        finally:
            invalidate_lexical(self.store)

    def plan(self, brief: str, *, backend: str = "board", **kwargs: Any) -> Any:
        """The generation plan for `brief` (items → references); see `assetrag.rag.plan`."""
        from assetrag import rag

        return rag.plan(self, brief, backend=backend, **kwargs)

    def generate(
        self,
        brief: str,
        *,
        backend: str = "board",
        refs: int | None = None,
        given: Sequence[str] = (),
        collection: str | list[str] | None = None,
        style_collection: str | None = None,
        include_synthetic: bool = False,
        out: str | os.PathLike[str] | None = None,
        min_fidelity: float | None = None,
        options: Any = None,
        generator_options: dict[str, Any] | None = None,
    ) -> Any:
        """Plan, generate, save and store back a new image grounded on this library (`GenerationResult`).
        `options` default: `GenerationOptions` with this library's `settings.generation_timeout_s`."""
        from assetrag import rag
        from assetrag.generation import GenerationOptions

        if options is None:
            options = GenerationOptions(timeout_s=self.settings.generation_timeout_s)

        p = rag.plan(
            self,
            brief,
            backend=backend,
            refs=refs,
            given=given,
            collection=collection,
            style_collection=style_collection,
            include_synthetic=include_synthetic,
            generator_options=generator_options,
        )
        return rag.run(
            self, p, options=options, out=out, min_fidelity=min_fidelity, generator_options=generator_options
        )

    def remove(self, targets: Sequence[str], *, dry_run: bool = False) -> int:
        """Remove assets by id, by file path, or every asset under a folder path; a video goes whole (all its
        keyframes), whichever of them was named. Returns how many assets (a video counts once; `dry_run`: how
        many would go, nothing is deleted — `to_remove` lists them)."""
        found = self.to_remove(targets)
        rows = [rid for record in found for rid in record["rows"]]
        if not dry_run and rows:
            self.store.delete(rows)
            invalidate_lexical(self.store)
        return len(found)

    def to_remove(self, targets: Sequence[str]) -> list[dict[str, Any]]:
        """The assets `remove(targets)` would delete, by path, deleting nothing: {id, path, rows} — for a video
        `id` is its `video_id` and `rows` its keyframes' ids (an image's `rows` is its own id)."""
        if not self.exists():
            return []
        fields = ("id", "path", "video_id")
        found: dict[str, dict[str, Any]] = {}
        for t in targets:
            if len(t) == 64 and all(c in "0123456789abcdef" for c in t):
                rows = self.store.get([t], fields) or self.store.query(F.eq("video_id", t), fields)
            else:
                p = os.path.abspath(t)
                if os.path.isdir(p) or t.endswith(os.sep):
                    rows = self.store.query(F.path_under(p.rstrip(os.sep) + os.sep), fields)
                else:
                    rows = self.store.query(F.has_tag(p, field="paths"), fields)
            found.update((r["id"], r) for r in rows)
        videos = sorted({r["video_id"] for r in found.values() if r.get("video_id")})
        if videos:  # every keyframe of a named video, even those not named
            found.update((r["id"], r) for r in self.store.query(F.one_of("video_id", videos), fields))
        records: dict[str, dict[str, Any]] = {}
        for r in sorted(found.values(), key=lambda r: r["id"]):
            key = r.get("video_id") or r["id"]
            records.setdefault(key, {"id": key, "path": r["path"], "rows": []})["rows"].append(r["id"])
        return sorted(records.values(), key=lambda rec: rec["path"])

    def ingested_file(self, asset_id: str) -> dict[str, Any] | None:
        """What ingest saw of an asset's files: {paths, mtimes (ns, one a path), size, id} (None: no asset)."""
        if not self.exists():
            return None
        rows = self.store.get([asset_id], ("id", "paths", "mtimes", "size"))
        return dict(rows[0]) if rows else None

    def stats(self) -> dict[str, Any]:
        """Count, model, backend, and per-collection / per-source counts."""
        out = self.store.stats()
        out["lexical"] = lexical_path(self.store) if out["exists"] else None  # which BM25 hybrid search uses
        if out["exists"]:
            facets = self.facets()
            out["collections"] = dict(sorted(facets["collections"].items()))
            out["sources"] = dict(sorted(facets["sources"].items()))
        return out

    def duplicates(
        self,
        *,
        distance: int = NEAR_DUPLICATE_DISTANCE,
        threshold: float | None = None,
        embedding: bool = True,
        rehash: bool = False,
    ) -> dict[str, Any]:
        """Copies in the library, as groups (see `DUPLICATES_DOC`):

        - `exact`: byte-identical files (one asset, several paths);
        - `near`: near-duplicates by perceptual-hash distance ≤ `distance` bits (resized, re-encoded, slightly
          cropped, overlaid or colour-shifted copies), each group's members with their distance to its first;
        - `similar`: embedding look-alikes not already in a `near` group, cosine ≥ `threshold` — by default the
          threshold calibrated for this library's model (`DUPLICATE_COSINE`); none for an uncalibrated model
          (`similar_note` says so), or when `embedding` is False;
        - `not_hashed`: assets stored before hashes were computed (`rehash=True` hashes them now, from their
          files; one whose file is gone stays unhashed).
        """
        out: dict[str, Any] = {"exact": [], "near": [], "similar": [], "not_hashed": 0, "rehashed": 0}
        out["distance"], out["threshold"], out["similar_note"] = distance, None, ""
        if not self.exists():
            return out
        if rehash:
            out["rehashed"] = self.rehash()
        rows = list(self.iterate(("id", "path", "paths", "filename", "phash", "media")))
        out["exact"] = [{"id": r["id"], "paths": list(r["paths"])} for r in rows if len(r.get("paths") or []) > 1]
        hashed = [r for r in rows if r.get("phash")]
        out["not_hashed"] = sum(1 for r in rows if _needs_hash(r))
        near_pairs = _hash_pairs([r["phash"] for r in hashed], distance)
        out["near"] = _groups(hashed, near_pairs, "distance")
        if embedding:
            model = self.store.model_info()
            name = model[0] if model else ""
            cosine = threshold if threshold is not None else DUPLICATE_COSINE.get(name)
            if cosine is None:
                out["similar_note"] = (
                    f"no embedding threshold is calibrated for {name} (benchmarks/near_duplicates.py); give one "
                    "to list look-alikes"
                )
            else:
                out["threshold"] = cosine
                in_near = {m["id"]: gi for gi, g in enumerate(out["near"]) for m in g["members"]}
                ids = [r["id"] for r in rows]
                vecs = self.vectors(ids)
                matrix = np.asarray([vecs[i] for i in ids], dtype=np.float32)
                pairs = [
                    (a, b, v)
                    for a, b, v in _cosine_pairs(matrix, cosine)
                    if in_near.get(ids[a], -1) != in_near.get(ids[b], -2)
                ]
                out["similar"] = _groups(rows, pairs, "score")
        return out

    def rehash(self) -> int:
        """Compute the perceptual hash of stored assets that have none (stored before hashes existed) from their
        files; returns how many were hashed (a missing or unreadable file is skipped)."""
        from assetrag.decode import hash_bytes

        todo = [r["id"] for r in self.iterate(("id", "phash", "media")) if _needs_hash(r)]
        done = 0
        for start in range(0, len(todo), 256):
            rows = self.store.get(todo[start : start + 256], (*SCALAR_FIELDS, "vector"))
            for row in rows:
                for path in [row["path"], *row.get("paths", [])]:
                    try:
                        row["phash"] = hash_bytes(Path(path).read_bytes(), path)
                        break
                    except Exception:  # gone, unreadable or no longer an image: try its other paths
                        continue
            changed = [r for r in rows if r.get("phash")]
            if changed:
                self.store.upsert(changed)
                done += len(changed)
        return done

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- moving and backing up the library (store/transfer.py, store/archive.py) ------------------------

    def migrate_to(
        self,
        uri: str | os.PathLike[str],
        *,
        library: str | None = None,
        token: str | None = None,
        db_name: str | None = None,
        progress: Any = None,
    ) -> Any:
        """Copy this library to another store — e.g. a Milvus server, `http://host:19530` — as it is
        (vectors included, no re-embedding), verified at the end; run it again to finish an interrupted
        copy. `library` defaults to this library's name. Returns a `store.transfer.TransferReport`."""
        from assetrag.config import check_library_name
        from assetrag.store.transfer import copy_library

        name = library or self.settings.library
        check_library_name(name)
        target = Store(os.fspath(uri), name, token=token, db_name=db_name)
        try:
            return copy_library(self.store, target, progress)
        finally:
            target.close()

    def export(self, path: str | os.PathLike[str], *, progress: Any = None) -> Any:
        """Write the whole library (rows, vectors, model, schema) to a Parquet file; returns an
        `store.archive.ArchiveReport`."""
        from assetrag.store.archive import export_library

        return export_library(self.store, path, progress=progress)

    def import_archive(self, path: str | os.PathLike[str], *, progress: Any = None) -> Any:
        """Load an `export` file into this library (created with the file's model when new; an existing
        library must have the same model). Returns an `store.archive.ArchiveReport`."""
        from assetrag.store.archive import import_archive

        return import_archive(self.store, path, progress=progress)


def lean_process() -> None:
    """For a process assetrag owns (the CLI): skip work third-party libraries do at first use for data assetrag
    never hands them (pymilvus' scipy probe). Not done on import: a program using assetrag as a library and
    pymilvus with scipy data itself keeps pymilvus as it is."""
    from assetrag.store import skip_scipy_probe

    skip_scipy_probe()


def _spec_for(model_name: str) -> str:
    """The load spec that reproduces a stored model name."""
    from assetrag.embedding import spec_for_name

    return spec_for_name(model_name)


def _needs_hash(row: dict[str, Any]) -> bool:
    """An image stored before perceptual hashes existed. A video's keyframes have none by design (their file is
    a video, not an image): they are never "not hashed yet" and never re-read for one."""
    return not row.get("phash") and row.get("media") != MEDIA_VIDEO_FRAME


def _hash_pairs(hashes: list[str], distance: int, block: int = 1024) -> list[tuple[int, int, float]]:
    """(i, j, bits that differ) for every pair of 64-bit hashes at most `distance` bits apart, i < j (blockwise
    XOR and popcount over all pairs: fine to ~50k assets)."""
    if not hashes:
        return []
    keys = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    pairs = []
    for start in range(0, len(keys), block):
        bits = np.bitwise_count(keys[start : start + block, None] ^ keys[None, :])
        for bi, j in zip(*np.nonzero(bits <= distance), strict=True):
            if start + bi < j:
                pairs.append((int(start + bi), int(j), float(bits[bi, j])))
    return pairs


def _cosine_pairs(vecs: np.ndarray, threshold: float, block: int = 2048) -> list[tuple[int, int, float]]:
    """(i, j, cosine) for every pair at cosine ≥ threshold, i < j (vectors are unit length)."""
    pairs = []
    for start in range(0, len(vecs), block):
        sims = vecs[start : start + block] @ vecs.T
        for bi, j in zip(*np.nonzero(sims >= threshold), strict=True):
            if start + bi < j:
                pairs.append((int(start + bi), int(j), round(float(sims[bi, j]), 4)))
    return pairs


def _groups(rows: list[dict[str, Any]], pairs: list[tuple[int, int, float]], key: str) -> list[dict[str, Any]]:
    """Connected groups of `pairs` over `rows`; each member carries its `key` (distance or score) to the group's
    first member (the one that sorts first by path) when the two were compared, else to its closest match."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    link: dict[tuple[int, int], float] = {}
    for a, b, v in pairs:
        parent[find(a)] = find(b)
        link[(a, b)] = link[(b, a)] = v
    members: dict[int, list[int]] = {}
    for a, b, _ in pairs:
        for i in (a, b):
            members.setdefault(find(i), [])
            if i not in members[find(i)]:
                members[find(i)].append(i)
    better = min if key == "distance" else max
    groups = []
    for idx in members.values():
        idx.sort(key=lambda i: rows[i]["path"])
        first = idx[0]
        out = []
        for i in idx:
            own = [v for (a, b), v in link.items() if a == i]
            value = 0.0 if i == first else link.get((first, i), better(own))
            if key == "score" and i == first:
                value = 1.0
            out.append({"id": rows[i]["id"], "path": rows[i]["path"], "filename": rows[i]["filename"], key: value})
        groups.append({"members": out, "size": len(out)})
    groups.sort(key=lambda g: (-g["size"], g["members"][0]["path"]))
    return groups
