"""`assetrag` command line: parse, call the `Library`, print. Nothing else lives here."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assetrag import objects
from assetrag.config import DEFAULT_GENERATION_TIMEOUT_S, DEFAULT_MAX_DELETE, Settings
from assetrag.errors import AssetragError, BadVideoError, ConfigError
from assetrag.library import NEAR_DUPLICATE_DISTANCE, Library, lean_process
from assetrag.search import DEFAULT_MODE, DEFAULT_RERANK, DEFAULT_RERANK_N, SearchHit
from assetrag.video import frame_at, moment_label

app = typer.Typer(
    name="assetrag",
    help="Find images in your asset library by meaning, and ground image generation on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: piped or redirected output (no terminal, no COLUMNS) gets tables this wide instead of Rich's 80 columns, which
#: would cut long paths; a terminal keeps its own width
PIPE_WIDTH = 240


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    tty = getattr(stream, "isatty", lambda: False)()
    return Console(stderr=stderr, soft_wrap=True, width=None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH)


out = _console()
err = _console(stderr=True)


class _State:
    settings: Settings


state = _State()


@app.callback()
def _global(
    uri: Annotated[
        str | None, typer.Option(help="Milvus Lite path (*.db) or Milvus server URL (env ASSETRAG_URI)")
    ] = None,
    library: Annotated[str | None, typer.Option(help="library (collection) name (env ASSETRAG_LIBRARY)")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="auto | offline | clip | clip:<dir or hub id> (env ASSETRAG_MODEL)"),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    batch_size: Annotated[int | None, typer.Option(help="images per embedding batch")] = None,
    workers: Annotated[int | None, typer.Option(help="decode threads")] = None,
    token: Annotated[str | None, typer.Option(help="Milvus server token (user:password or API key)")] = None,
    db_name: Annotated[str | None, typer.Option(help="Milvus server database name")] = None,
    index: Annotated[
        str | None,
        typer.Option(help="index of a new library: auto | hnsw | flat | ivf_flat | autoindex (env ASSETRAG_INDEX)"),
    ] = None,
    runtime: Annotated[
        str | None, typer.Option(help="model runtime: auto (ONNX on CPU, torch on CUDA) | onnx | torch")
    ] = None,
    quantize: Annotated[str | None, typer.Option(help="int8 text/vision towers on ONNX: auto | none | int8")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="settings file (default: ./assetrag.toml over ~/.config/assetrag/assetrag.toml)"),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="a \\[profile.NAME] table of the settings file (env ASSETRAG_PROFILE)")
    ] = None,
) -> None:
    """Global options may also follow the command (`assetrag ingest --uri x.db photos/`). Precedence: flags >
    ASSETRAG_* environment > assetrag.toml (its [profile.NAME] when chosen) > defaults; `assetrag doctor` says
    where each setting came from."""
    state.settings = Settings.load(
        config=config,
        profile=profile,
        uri=uri,
        library=library,
        model=model,
        device=device,
        batch_size=batch_size,
        workers=workers,
        token=token,
        db_name=db_name,
        index=index,
        runtime=runtime,
        quantize=quantize,
    )


def _lib() -> Library:
    return Library(settings=state.settings, announce=lambda msg: err.print(f"[yellow]{escape(msg)}[/]"))


class RichProgress:
    """A progress bar with the rate over the run so far (`unit`: what is counted, per second)."""

    def __init__(self, console: Console, unit: str = "img/s") -> None:
        self._unit = unit
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None

    def start(self, total: int, description: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, rate="")
        self._t0 = time.perf_counter()
        self._done = 0

    def advance(self, n: int = 1) -> None:
        # the rate over the whole run so far (what the summary reports), not Rich's short window: files are
        # handed over in bursts after each batch, which made the windowed speed read thousands of img/s
        self._progress.advance(self._task, n)
        self._done += n
        elapsed = time.perf_counter() - self._t0
        rate = self._done / elapsed if elapsed > 0 else 0.0
        self._progress.update(self._task, rate=f"{rate:.1f} {self._unit}" if self._done else "")

    def stop(self) -> None:
        self._progress.stop()


@app.command()
def ingest(
    paths: Annotated[
        list[str], typer.Argument(help="folders or files to ingest, or bucket prefixes (s3://, gs://, az://)")
    ],
    collection: Annotated[str | None, typer.Option(help="collection name (default: first folder)")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="tag to add (repeatable)")] = None,
    prune: Annotated[
        bool,
        typer.Option(
            help="remove entries whose files are gone from disk (only under PATHS that could be listed; a missing, "
            "unreadable or empty PATH is refused, exit status 1)"
        ),
    ] = False,
    max_delete: Annotated[
        str,
        typer.Option(help="--prune deletes at most this many assets: N, or P% of the library (refused beyond it)"),
    ] = DEFAULT_MAX_DELETE,
    force: Annotated[
        bool, typer.Option(help="--prune even under a missing/empty/unreadable PATH and beyond --max-delete")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="change nothing: list what --prune would remove (and count what would be read)")
    ] = False,
    follow_symlinks: Annotated[
        bool, typer.Option(help="also ingest symbolic links to files outside PATHS (default: reported, not read)")
    ] = False,
    errors: Annotated[Path | None, typer.Option(help="write the per-file errors as JSON here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show where the time went, stage by stage")] = False,
    pipeline: Annotated[
        str | None,
        typer.Option(
            help="auto (fast on CUDA) | simple | fast: fast decodes straight to the model's input size and "
            "overlaps decode, embedding and writes (env ASSETRAG_PIPELINE)"
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(help="local | ray: read, decode and embed on a Ray cluster (pip install 'assetrag\\[ray]')"),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="--engine ray: auto (this machine's cluster) or ray://host:10001 (default: a local Ray)"),
    ] = None,
    bulk: Annotated[
        str | None,
        typer.Option(
            help="auto | on | off: load new rows with the Milvus server's bulk insert (Parquet files staged in "
            "--bulk-stage) instead of upserts; auto: a server, a stage and ≥ ASSETRAG_BULK_THRESHOLD (50000) "
            "files to read (env ASSETRAG_BULK)"
        ),
    ] = None,
    bulk_stage: Annotated[
        str | None,
        typer.Option(
            help="where bulk files are staged: a directory the Milvus server reads at the same path, or "
            "s3://its-bucket/prefix (env ASSETRAG_BULK_STAGE; ASSETRAG_BULK_SERVER_PATH: the server's name for it)"
        ),
    ] = None,
) -> None:
    """Add or refresh the images under PATHS — folders, files or bucket prefixes (s3://bucket/prefix, gs://…,
    az://…) — incremental: unchanged files are skipped. Exit status 1 when a PATH does not exist or cannot be
    listed, or a prune was refused (bad files are reported and do not change it)."""
    with _lib() as lib:
        sink = _bar(progress and not as_json)
        report = lib.ingest(
            paths,
            collection=collection,
            tags=tag or [],
            prune=prune,
            progress=sink,
            pipeline=pipeline,
            max_delete=max_delete,
            force=force,
            dry_run=dry_run,
            follow_symlinks=follow_symlinks,
            engine=engine,
            address=address,
            bulk=bulk,
            bulk_stage=bulk_stage,
        )
    _print_ingest(report, errors=errors, as_json=as_json, verbose=verbose, prune=prune)
    if report.refused or report.missing_roots:
        raise typer.Exit(1)


def _sheet_image(path: str) -> Any:
    """A contact-sheet tile's image: a file's path, or an object read (bounded) through `assetrag.objects`."""
    if not objects.is_url(path):
        return Path(path)
    try:
        return objects.load_image(path, 512)
    except Exception:  # the sheet shows a placeholder for it
        return Path(path)


def _print_ingest(report: Any, *, errors: Path | None, as_json: bool, verbose: bool, prune: bool) -> None:
    if errors:
        errors.parent.mkdir(parents=True, exist_ok=True)
        errors.write_text(json.dumps([e.__dict__ for e in report.errors], indent=2, ensure_ascii=False))
    if as_json:
        out.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
        _print_refused(report)
        return
    if report.dry_run:
        out.print(
            f"dry run: scanned {report.scanned} · unchanged {report.unchanged} · "
            f"{report.scanned - report.unchanged} to read · nothing was changed"
        )
        if prune:
            out.print(f"would prune {len(report.would_prune)} path(s), deleting {report.would_delete} asset(s):")
            for path in report.would_prune:
                out.print(f"  {path}", markup=False, highlight=False)
        elif report.missing:
            out.print(f"[yellow]{report.missing} stored files are gone from disk; --prune would remove them[/]")
    else:
        _print_done(report, verbose)
    _print_refused(report)


#: held-back paths listed after a refused prune (all of them are in --json)
HELD_BACK_SHOWN = 20


def _print_refused(report: Any) -> None:
    for note in getattr(report, "notes", ()):
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for why in report.refused:
        err.print(f"[red]prune refused:[/] {escape(why)}", highlight=False)
    held = getattr(report, "held_back", ())
    if held:
        err.print(f"held back ({len(held)} path(s) gone from disk that --force would prune):", highlight=False)
        for path in held[:HELD_BACK_SHOWN]:
            err.print(f"  {path}", markup=False, highlight=False)
        if len(held) > HELD_BACK_SHOWN:
            err.print(f"  … and {len(held) - HELD_BACK_SHOWN} more (--json lists them all)", highlight=False)
    for root in getattr(report, "missing_roots", ()):
        err.print(
            f"[red]not found:[/] {escape(root)} does not exist or cannot be listed; check the path", highlight=False
        )


def _print_done(report: Any, verbose: bool) -> None:
    out.print(
        f"scanned {report.scanned} · added {report.added} · updated {report.updated} · "
        f"unchanged {report.unchanged} · duplicates {report.duplicates} · pruned {report.pruned} · "
        f"errors {len(report.errors)} · {report.elapsed_s:.1f}s ({report.images_per_s:.1f} img/s)"
        + (f" · {report.videos} video(s), {report.keyframes} keyframes" if report.videos else "")
        + (f" · {report.bulk_rows} by bulk insert" if report.bulk_rows else "")
    )
    if verbose and report.stages:
        table = Table("stage", "seconds", title="time per stage (summed over the threads that ran it)")
        for stage, seconds in report.stages.items():
            table.add_row(stage, f"{seconds:.2f}")
        out.print(table)
    if report.missing:
        out.print(f"[yellow]{report.missing} stored files are gone from disk; run with --prune to remove them[/]")
    if report.errors:
        table = Table("file", "problem", title=f"{len(report.errors)} file(s) not ingested", title_justify="left")
        for e in report.errors[:50]:
            table.add_row(escape(e.path), escape(e.reason))
        out.print(table)
        if len(report.errors) > 50:
            out.print(f"… and {len(report.errors) - 50} more (use --errors FILE for the full list)")


RERANK_HELP = (
    "re-rank the top --rerank-n of a hybrid search: none | scores (by cosine and BM25 scores, standardised, instead "
    "of ranks); see docs/quality.md"
)


def _rerank(value: str | None) -> str | None:
    """'none' / 'off' / '' → None; a method name as it is (unknown ones: BadParameter)."""
    from assetrag.search.rerank import parse_rerank

    try:
        return parse_rerank(value)
    except ConfigError as exc:
        raise typer.BadParameter(f"--{exc}") from exc


def _tile_image(hit: SearchHit) -> Any:
    """A contact-sheet tile's picture: the file, or for a video hit the frame at its time."""
    if hit.is_video and hit.time is not None:
        try:
            return frame_at(hit.path, hit.time)
        except BadVideoError:
            pass  # the sheet shows why the file cannot be opened
    return _sheet_image(hit.path)


@app.command()
def search(
    text: Annotated[str | None, typer.Argument(help="what to look for, in words")] = None,
    image: Annotated[Path | None, typer.Option("--image", "-i", help="query image (alone or with text)")] = None,
    k: Annotated[int, typer.Option("-k", "--top", help="number of results")] = 5,
    offset: Annotated[int, typer.Option(help="skip this many results (the next page: --offset K)")] = 0,
    collection: Annotated[list[str] | None, typer.Option(help="only these collections")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="only assets with this tag")] = None,
    source: Annotated[str | None, typer.Option(help="ingested | synthetic")] = None,
    where: Annotated[str | None, typer.Option(help="raw Milvus filter, e.g. 'width > 1000'")] = None,
    min_score: Annotated[float | None, typer.Option(help="drop results below this cosine similarity")] = None,
    text_weight: Annotated[float, typer.Option(help="text share when both text and image are given")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
    sheet: Annotated[Path | None, typer.Option(help="write a contact sheet PNG here")] = None,
    mode: Annotated[
        str,
        typer.Option(help="hybrid (meaning + words in file names, tags, captions) | vector (meaning only)"),
    ] = DEFAULT_MODE,
    understand: Annotated[
        bool,
        typer.Option(help="read collection / tag / year names in the text as filters (--no-understand: don't)"),
    ] = True,
    lang: Annotated[
        str,
        typer.Option(
            help="the text's language: auto (detect; non-English goes through the offline model's multilingual "
            "text encoder) | en | fr, de, es, … | multi"
        ),
    ] = "auto",
    rerank: Annotated[str, typer.Option(help=RERANK_HELP)] = DEFAULT_RERANK or "none",
    rerank_n: Annotated[int, typer.Option(help="candidates re-ranked by --rerank")] = DEFAULT_RERANK_N,
    group_videos: Annotated[
        bool, typer.Option(help="show a video once, at its best moment (default: once per matching moment)")
    ] = False,
    media: Annotated[str | None, typer.Option(help="only image | video_frame results")] = None,
) -> None:
    """Find assets by text, by image, or both (a video hit names the moment: `video.mp4 @ 12.5s`)."""
    with _lib() as lib:
        hits = lib.search(
            text,
            image=image,
            k=k,
            offset=offset,
            collection=collection or None,
            tags=tag or [],
            source=source,
            where=where,
            min_score=min_score,
            text_weight=text_weight,
            mode=mode,
            understand=understand,
            lang=lang,
            rerank=_rerank(rerank),
            rerank_n=rerank_n,
            group_videos=group_videos,
            media=media,
        )
        if not hits:  # an explicit name matches exactly ("Jewelry" is not "jewelry"): say which one matched nothing
            hint = {"collection": "names are exact; `assetrag stats` lists the collections", "tag": "names are exact"}
            for name in collection or []:
                if lib.page(collection=name, limit=1)[0] == 0:
                    err.print(f"[yellow]no asset has collection {escape(repr(name))} ({hint['collection']})[/]")
            for name in tag or []:
                if lib.page(tags=[name], limit=1)[0] == 0:
                    err.print(f"[yellow]no asset has tag {escape(repr(name))} ({hint['tag']})[/]")
    # on stderr, with --json too: a script's results may have been filtered by names read from its query
    if hits.understood:
        err.print(f"[cyan]{escape(hits.understood.describe())}[/] (--no-understand searches the words as given)")
    for note in hits.notes:
        err.print(f"[cyan]{escape(note)}[/]")
    title = " + ".join(x for x in (f'"{text}"' if text else "", f"image {image.name}" if image else "") if x)
    if sheet:
        from assetrag.render import SheetTile, render_contact_sheet

        render_contact_sheet(title, [SheetTile(_tile_image(h), h.label, h.score) for h in hits], sheet)
    if as_json:
        out.print_json(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
    else:
        fused = any(h.fused_score is not None for h in hits)
        cols = ["#", "score", *(["match"] if fused else []), "path", "collection", "tags"]
        table = Table(*cols, title=escape(title), title_justify="left")
        for i, h in enumerate(hits):
            match = [_match(h)] if fused else []
            if i == hits.weak_from:  # the calibrated "no good match" line (docs/quality.md)
                table.add_row("", "", *([""] if fused else []), f"[yellow]{hits.weak_line()}[/]", "", "")
            where = moment_label(h.path, h.time)
            # paths, collections and tags are the user's words: "[draft]" or "[/b]" is text, not markup
            row = (
                str(h.rank),
                f"{h.score:.3f}",
                *match,
                escape(where),
                escape(h.collection),
                escape(", ".join(h.tags)),
            )
            table.add_row(*row, style="dim" if h.weak else None)
        out.print(table if hits else "no results")
    if sheet:
        err.print(f"contact sheet: {sheet.resolve()}")


def _match(h: Any) -> str:
    """Where a hybrid hit came from: its place by meaning and by words (name, tags, captions)."""
    parts = [f"meaning #{h.vector_rank}" if h.vector_rank else "", f"words #{h.lexical_rank}" if h.lexical_rank else ""]
    return " · ".join(p for p in parts if p)


@app.command()
def generate(
    brief: Annotated[str, typer.Argument(help="what to make, in words; the items it names are looked up")],
    backend: Annotated[
        str,
        typer.Option(
            help="gemini | openai | diffusers:<checkpoint dir> | board (offline reference board); "
            "a model after ':' e.g. gemini:gemini-3-pro-image-preview"
        ),
    ] = "board",
    refs: Annotated[str, typer.Option(help="auto (the backend's limit) or a number")] = "auto",
    ref: Annotated[list[str] | None, typer.Option("--ref", help="asset id or image file to include")] = None,
    collection: Annotated[list[str] | None, typer.Option(help="retrieve references only from these")] = None,
    style_collection: Annotated[str | None, typer.Option(help="brand/style references from here")] = None,
    include_synthetic: Annotated[bool, typer.Option(help="allow generated images as references")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--out", help="output PNG")] = None,
    aspect_ratio: Annotated[str | None, typer.Option(help="e.g. 16:9 (the backend says which it takes)")] = None,
    size: Annotated[str | None, typer.Option(help="backend-specific size, e.g. 1024x1024")] = None,
    seed: Annotated[int | None, typer.Option(help="seed (backends that take one)")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="seconds one request to the backend may take; a request that runs past it fails and is not "
            f"retried (env ASSETRAG_GENERATION_TIMEOUT, default {DEFAULT_GENERATION_TIMEOUT_S:g})"
        ),
    ] = None,
    min_fidelity: Annotated[float | None, typer.Option(help="flag outputs less similar to their references")] = None,
    dry_run: Annotated[bool, typer.Option(help="print the plan and write the reference board; call no API")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print plan/result as JSON")] = False,
) -> None:
    """Make a new image from a brief, grounded on references retrieved from the library."""
    from assetrag import rag
    from assetrag.generation import GenerationOptions, get_generator

    if refs != "auto" and not refs.isdigit():
        raise typer.BadParameter("--refs takes 'auto' or a number")
    if timeout is not None and not 0 < timeout < math.inf:
        raise typer.BadParameter(f"--timeout takes a number of seconds > 0, got {timeout:g}")
    with _lib() as lib:
        p = rag.plan(
            lib,
            brief,
            backend=backend,
            refs=None if refs == "auto" else int(refs),
            given=ref or [],
            collection=collection or None,
            style_collection=style_collection,
            include_synthetic=include_synthetic,
        )
        if dry_run:
            board = rag.run(lib, p, backend=get_generator("board"), out=output, store_back=False)
            if as_json:
                _print_json({"plan": p.to_dict(), "board": board.metadata["output_path"]})
            else:
                out.print(p.describe(), markup=False, highlight=False)
                out.print(f"reference board: {board.metadata['output_path']}", markup=False)
            return
        result = rag.run(
            lib,
            p,
            options=GenerationOptions(
                aspect_ratio=aspect_ratio,
                size=size,
                seed=seed,
                timeout_s=timeout if timeout is not None else state.settings.generation_timeout_s,
            ),
            out=output,
            min_fidelity=min_fidelity,
        )
    meta = result.metadata
    if as_json:
        _print_json({**meta, "model": result.model, "warnings": result.warnings})
        return
    out.print(p.describe(), markup=False, highlight=False)
    fid = meta["fidelity"]["mean"]
    out.print(
        f"image: {meta['output_path']} · model {result.model}"
        + (f" · fidelity {fid:.3f}" if fid is not None else "")
        + (f" · stored as {meta['asset_id']}" if meta.get("asset_id") else ""),
        markup=False,
    )
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


@app.command("eval")
def eval_(
    queries_file: Annotated[Path, typer.Argument(help="labelled queries: JSONL or CSV (see assetrag.evaluate)")],
    root: Annotated[
        Path | None, typer.Option(help="folder the relevant paths are relative to (default: the file's folder)")
    ] = None,
    ingest_root: Annotated[
        bool, typer.Option("--ingest", help="ingest ROOT into the library first (each compared model's own)")
    ] = False,
    mode: Annotated[str, typer.Option(help="hybrid | vector")] = DEFAULT_MODE,
    templates: Annotated[str | None, typer.Option(help="prompt templates: none | photo | ensemble")] = None,
    understand: Annotated[bool, typer.Option(help="read collection / tag names in queries as filters")] = True,
    lang: Annotated[str, typer.Option(help="the queries' language: auto | en | fr, de, es, … | multi")] = "auto",
    rerank: Annotated[str, typer.Option(help=RERANK_HELP)] = DEFAULT_RERANK or "none",
    rerank_n: Annotated[int, typer.Option(help="candidates re-ranked by --rerank")] = DEFAULT_RERANK_N,
    compare_: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            help="another configuration to run side by side, e.g. 'mode=vector', 'model=offline' or 'rerank=scores'",
        ),
    ] = None,
    depth: Annotated[int, typer.Option(help="results retrieved per query (MRR is MRR@depth)")] = 100,
    per_query: Annotated[bool, typer.Option(help="show a row per query")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
) -> None:
    """Measure retrieval quality on labelled queries: recall@1/5/10, MRR, nDCG@10, per query and overall."""
    from assetrag.evaluate import KS, NDCG_AT, compare, describe_config, load_queries, parse_config

    queries = load_queries(queries_file, root)
    base_root = root if root is not None else queries_file.parent
    base = {
        "model": state.settings.model,
        "mode": mode,
        "templates": templates,
        "understand": understand,
        "lang": lang,
        "rerank": _rerank(rerank),
        "rerank_n": rerank_n,
    }
    try:
        configs = [dict(base, label=None)] + [parse_config(c, base) for c in compare_ or []]
        reports = compare(
            state.settings,
            queries,
            configs,
            root=base_root,
            ingest=ingest_root,
            depth=depth,
            announce=lambda msg: err.print(f"[yellow]{escape(msg)}[/]"),
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if as_json:
        _print_json([r.to_dict() for r in reports])
        return
    keys = [f"recall@{k}" for k in KS] + ["mrr", f"ndcg@{NDCG_AT}"]
    heads = [f"R@{k}" for k in KS] + ["MRR", f"nDCG@{NDCG_AT}"]
    if per_query:
        table = Table("query", "relevant", *[f"#{i + 1}" for i in range(len(reports))], title_justify="left")
        table.title = f"rank of the first relevant result per configuration (- = not in the top {depth})"
        for i, q in enumerate(reports[0].queries):
            firsts = [str(r.queries[i].ranks[0]) if r.queries[i].ranks else "-" for r in reports]
            table.add_row(q.id, str(q.relevant), *firsts)
        out.print(table)
    queries_scored = sum(1 for q in reports[0].queries if q.relevant)
    summary = Table(
        title=f"overall ({reports[0].config['assets']} assets, {queries_scored} queries)", title_justify="left"
    )
    summary.add_column("#", no_wrap=True)
    summary.add_column("configuration", ratio=1)
    for head in [*heads, "s"]:
        summary.add_column(head, no_wrap=True, min_width=len(head), justify="right")
    for i, r in enumerate(reports):
        c = r.config
        name = describe_config(c)
        summary.add_row(str(i + 1), name, *[f"{r.overall.get(k, 0):.3f}" for k in keys], f"{r.seconds:.1f}")
    out.print(summary)
    for r in reports:
        missing = sorted({m for q in r.queries for m in q.missing})
        if missing:
            err.print(f"[yellow]{len(missing)} relevant path(s) are not in the library, e.g. {escape(missing[0])}[/]")
        empty = [q.id for q in r.queries if not q.relevant]
        if empty:
            err.print(f"[yellow]{len(empty)} query(ies) have no relevant asset in the library and are not scored[/]")


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """How many assets, which model, which store."""
    with _lib() as lib:
        info = lib.stats()
    if as_json:
        out.print_json(json.dumps(info))
        return
    for key, value in info.items():
        out.print(f"[bold]{key}[/]: {escape(str(value))}")


@app.command()
def remove(
    targets: Annotated[list[str], typer.Argument(help="asset ids, file paths or folders")],
    dry_run: Annotated[bool, typer.Option(help="list what would be removed; remove nothing")] = False,
) -> None:
    """Remove assets from the library (files on disk are not touched); a video goes with all its keyframes."""
    with _lib() as lib:
        if dry_run:
            found = lib.to_remove(targets)
            out.print(f"would remove {len(found)} asset(s) (dry run: nothing was removed)")
            for r in found:
                frames = f"  (video, {len(r['rows'])} keyframes)" if r["id"] not in r["rows"] else ""
                out.print(f"  {r['id'][:12]}  {r['path']}{frames}", markup=False, highlight=False)
            return
        n = lib.remove(targets)
    out.print(f"removed {n} asset(s)")


@app.command()
def duplicates(
    distance: Annotated[
        int, typer.Option(help="near-duplicates: perceptual-hash bits (of 64) that may differ")
    ] = NEAR_DUPLICATE_DISTANCE,
    threshold: Annotated[
        float | None,
        typer.Option(help="look-alikes: cosine similarity (default: the one calibrated for the library's model)"),
    ] = None,
    no_embedding: Annotated[bool, typer.Option("--no-embedding", help="skip the embedding look-alikes")] = False,
    rehash: Annotated[
        bool, typer.Option("--rehash", help="first hash assets stored before hashes existed (reads their files)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Copies as groups: byte-identical files, near-duplicates by perceptual hash (resized, re-encoded, cropped,
    overlaid, colour-shifted), and look-alikes by embedding similarity above the model's calibrated threshold."""
    with _lib() as lib:
        found = lib.duplicates(distance=distance, threshold=threshold, embedding=not no_embedding, rehash=rehash)
    if as_json:
        out.print_json(json.dumps(found))
        return
    if found["rehashed"]:
        out.print(f"hashed {found['rehashed']} asset(s) stored before hashes existed")
    out.print(f"[bold]{len(found['exact'])} exact duplicate group(s)[/] (byte-identical files, one asset)")
    for g in found["exact"]:
        out.print("  " + "  =  ".join(g["paths"]), markup=False, highlight=False)
    out.print(f"[bold]{len(found['near'])} near-duplicate group(s)[/] (perceptual hash ≤ {distance} bits apart)")
    for g in found["near"]:
        out.print(f"  group of {g['size']}:")
        for m in g["members"]:
            out.print(f"    {m['distance']:>4.0f}  {m['path']}", markup=False, highlight=False)
    if found["threshold"] is not None:
        out.print(f"[bold]{len(found['similar'])} look-alike group(s)[/] (embedding cosine ≥ {found['threshold']})")
        for g in found["similar"]:
            out.print(f"  group of {g['size']}:")
            for m in g["members"]:
                out.print(f"    {m['score']:.3f}  {m['path']}", markup=False, highlight=False)
    elif found["similar_note"]:
        out.print(f"look-alikes: {found['similar_note']}")
    if found["not_hashed"]:
        out.print(
            f"[yellow]{found['not_hashed']} asset(s) not hashed yet[/] (stored before hashes existed): run "
            "`assetrag duplicates --rehash`"
        )


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the model, the store and the versions: what works and what to fix."""
    from assetrag.doctor import run_checks

    checks = run_checks(state.settings)
    if as_json:
        out.print_json(json.dumps([c.__dict__ for c in checks]))
    else:
        for c in checks:
            mark = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}[c.status]
            out.print(f"{mark} [bold]{c.name}[/]: {escape(c.detail)}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind (anything but loopback exposes it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    root: Annotated[
        list[Path] | None,
        typer.Option("--root", help="folder the server may ingest and serve from (repeatable; env ASSETRAG_ROOTS)"),
    ] = None,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the web page. Set ASSETRAG_API_TOKEN to require a token."""
    from assetrag.server import serve as run_server

    err.print(f"assetrag: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    run_server(state.settings, host=host, port=port, roots=root or [])


@app.command("index")
def index_cmd(
    kind: Annotated[
        str | None,
        typer.Argument(help="hnsw | flat | ivf_flat | autoindex | auto (default: --index, else the type it has)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """(Re)build the library's vector index over everything stored (blocks until it is built)."""
    chosen = kind or (state.settings.index if state.settings.index != "auto" else None)
    with _lib() as lib:
        info = lib.rebuild_index(chosen)
    if as_json:
        _print_json(info)
        return
    params = ", ".join(f"{k}={v}" for k, v in info["params"].items())
    what = f"{info['index_type']} ({params})" if params else info["index_type"]
    out.print(f"built {what} over {info['rows']} assets in {info['seconds']}s")


# -- moving and backing up a library (Library.migrate_to / export / import_archive) ----------------------


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="destination: a Milvus server URL (http://host:19530) or a *.db")],
    to_library: Annotated[str | None, typer.Option(help="library name there (default: the same name)")] = None,
    to_token: Annotated[str | None, typer.Option(help="the destination server's token")] = None,
    to_db_name: Annotated[str | None, typer.Option(help="the destination server's database")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Copy the library to another Milvus — e.g. from Milvus Lite to a server — without re-embedding.

    Verified at the end; if it is interrupted, run the same command again."""
    with _lib() as lib:
        report = lib.migrate_to(
            to,
            library=to_library,
            token=to_token,
            db_name=to_db_name,
            progress=_bar(progress and not as_json, "assets/s"),
        )
    if _as_json(report, as_json):
        return
    extra = f" ({report.extra} more were already there)" if report.extra else ""
    out.print(
        f"copied {report.rows} assets ({report.model}, dim {report.dim}) to {report.destination}{extra} in "
        f"{report.seconds}s; verified: every id present, {report.sampled} rows compared field by field",
        markup=False,
    )
    name = to_library or state.settings.library
    out.print(
        f"use it with: --uri {to} --library {name}   (or ASSETRAG_URI={to} ASSETRAG_LIBRARY={name})", markup=False
    )


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="Parquet file to write (replaced when complete)")],
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Back up the whole library (rows, vectors, model) to one Parquet file; `assetrag import` restores it."""
    with _lib() as lib:
        report = lib.export(path, progress=_bar(progress and not as_json, "assets/s"))
    if _as_json(report, as_json):
        return
    out.print(
        f"exported {report.rows} assets ({report.model}, dim {report.dim}) to {report.path} in {report.seconds}s",
        markup=False,
    )


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="a file written by `assetrag export`")],
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Restore an export into the library (--library; created with the file's model when it is new)."""
    with _lib() as lib:
        report = lib.import_archive(path, progress=_bar(progress and not as_json, "assets/s"))
    if _as_json(report, as_json):
        return
    out.print(
        f"imported {report.rows} assets ({report.model}, dim {report.dim}) into library {report.library!r}",
        markup=False,
    )


def _bar(show: bool, unit: str = "img/s") -> RichProgress | None:
    """A progress bar on stderr, or None."""
    return RichProgress(err, unit) if show else None


def _as_json(report: Any, as_json: bool) -> bool:
    """Print `report` as JSON when `as_json`; True when it did."""
    if as_json:
        _print_json(report.to_dict())
    return as_json


def hoist_global_options(argv: list[str], group: Any = None) -> list[str]:
    """`argv` with the global options written after the command moved before it, so `assetrag ingest --uri x.db
    photos/` means `assetrag --uri x.db ingest photos/` (a command's own option of the same name stays).
    `group`: the app's click command when already built."""
    group = group or typer.main.get_command(app)
    flags: dict[str, bool] = {}  # option name → takes a value
    for param in group.params:
        for name in (*param.opts, *param.secondary_opts):
            flags[name] = not getattr(param, "is_flag", False)
    commands = getattr(group, "commands", {})
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # global options before the command
        name = argv[i].split("=", 1)[0]
        i += 2 if flags.get(name) and "=" not in argv[i] else 1
    if i >= len(argv) or argv[i] not in commands:
        return list(argv)
    own = {n for p in commands[argv[i]].params for n in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
    head, cmd, rest, moved = list(argv[:i]), argv[i], [], []
    j = i + 1
    while j < len(argv):
        token = argv[j]
        if token == "--":
            rest += argv[j:]
            break
        name = token.split("=", 1)[0]
        if name in flags and name not in own:
            takes = flags[name] and "=" not in token
            moved += argv[j : j + (2 if takes else 1)]
            j += 2 if takes else 1
            continue
        rest.append(token)
        j += 1
    return [*head, *moved, cmd, *rest]


def main() -> None:
    """Console-script entry point: user errors print one clear line and exit 2."""
    # the click command is built once (`app()` would build it again: ~0.1 s of a search's start)
    command = typer.main.get_command(app)
    lean_process()
    try:
        command(args=hoist_global_options(sys.argv[1:], command))
    except AssetragError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
