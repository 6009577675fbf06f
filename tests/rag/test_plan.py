"""The RAG loop on the real offline model and Milvus Lite: plan, dry-run board, internal-only, store-back."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assetrag import rag
from assetrag.errors import QueryError
from assetrag.generation import get_generator

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "library"
BRIEF = (
    "A model poses leaning on a blue convertible sports car. She wears a halter dress, a diamond necklace and "
    "a blue watch, high heels, and holds a Labubu pendant"
)
#: the brief's items and the folder (product category) each one's reference must come from
EXPECTED = {
    "blue convertible sports car": "vehicles",
    "halter dress": "fashion",
    "diamond necklace": "jewelry",
    "blue watch": "watches",
    "high heels": "footwear",
}
FOLDERS = ["vehicles", "fashion", "jewelry", "watches", "footwear", "accessories/charms", "brand-style", "photos"]


def _ingest_products(base: Path, make) -> tuple:
    """A product library that holds something for every item of the seed's brief, plus distractors."""
    root = base / "products"
    for folder in FOLDERS:
        shutil.copytree(SAMPLES / folder, root / folder)
    lib = make(base / "lib.db")
    report = lib.ingest(root)
    assert not report.errors
    return lib, root


@pytest.fixture(scope="module")
def brief_template(tmp_path_factory, offline_embedder) -> tuple[Path, Path]:
    """The product library ingested once per module: (its closed Milvus Lite directory, the product folder)."""
    from assetrag import Library

    lib, root = _ingest_products(
        tmp_path_factory.mktemp("brief"), lambda uri: Library(uri, library="assets", embedder=offline_embedder)
    )
    lib.close()
    return Path(lib.settings.uri), root


@pytest.fixture
def brief_library(tmp_path, make_library, brief_template):
    """(library, product folder): each test's own copy of the ingested product library (a closed Lite directory
    copies; nothing is embedded again). The product folder is shared: a test that changes it uses
    `own_brief_library`."""
    db, root = brief_template
    return make_library(uri=shutil.copytree(db, tmp_path / "lib.db")), root


@pytest.fixture
def own_brief_library(tmp_path, make_library):
    """(library, product folder): the product library ingested for this test alone, in its own folder."""
    return _ingest_products(tmp_path, lambda uri: make_library(uri=uri))


def test_seed_brief_plan_has_one_reference_per_item(brief_library, tmp_path):
    lib, root = brief_library
    plan = rag.plan(lib, BRIEF, backend="board", style_collection="brand-style")
    items = {ip.item: ip for ip in plan.items}
    assert set(EXPECTED) <= set(items)
    for item, folder in EXPECTED.items():
        chosen = items[item].chosen
        assert chosen is not None, item
        assert Path(chosen.path).relative_to(root).parts[0] == folder, (item, chosen.path)
    chosen_ids = [r.id for r in plan.chosen]
    assert len(chosen_ids) == len(set(chosen_ids))  # de-duplicated
    assert {ip.chosen.id for ip in plan.items if ip.chosen} <= set(chosen_ids)
    assert any(r.role == "style" and "brand-style" in r.path for r in plan.chosen)
    assert json.loads(json.dumps(plan.to_dict()))["brief"] == BRIEF
    assert plan.mode == "hybrid" and plan.understood is None  # the brief names no collection
    assert "retrieval: hybrid search" in plan.describe()

    # dry run: the reference board is written, nothing is stored back
    before = lib.stats()["count"]
    board = rag.run(lib, plan, backend=get_generator("board"), out=tmp_path / "board.png", store_back=False)
    assert Image.open(board.metadata["output_path"]).size[1] > 400
    assert lib.stats()["count"] == before


def test_a_brief_that_names_a_collection_retrieves_from_it(brief_library):
    """Understanding runs once on the brief (no explicit collection): the named collection filters the
    item and whole-brief searches, and "the jewelry collection" is not taken for an item."""
    lib, root = brief_library
    brief = "a diamond necklace and gold rings from the jewelry collection"
    plan = rag.plan(lib, brief, backend="board")
    assert [ip.item for ip in plan.items] == ["diamond necklace", "gold rings"]
    assert plan.understood["text"] == "a diamond necklace and gold rings"
    assert [(f["field"], f["values"]) for f in plan.understood["filters"]] == [("collection", ["jewelry"])]
    assert plan.chosen and {Path(r.path).relative_to(root).parts[0] for r in plan.chosen} == {"jewelry"}
    assert plan.items[0].chosen.filename == "diamond-pendant-necklace.png"
    assert any("understood: collection = jewelry" in n for n in plan.notes)
    # an explicit collection is kept as given: no names are read from the brief
    explicit = rag.plan(lib, brief, backend="board", collection="watches")
    assert explicit.understood is None
    assert {Path(r.path).relative_to(root).parts[0] for r in explicit.chosen} == {"watches"}


def test_a_weak_reference_is_said_in_the_plan(brief_library):
    """An item whose best match is under the model's no-good-match line is chosen all the same (something to
    draw from) but the plan says so; an item the library holds is not flagged."""
    lib, _ = brief_library
    plan = rag.plan(lib, "a penguin", backend="board", collection="jewelry")  # no penguin among the jewels (0.18)
    car = plan.items[0]
    assert car.chosen is not None and car.chosen.weak
    assert any(n.startswith(f"item {car.item!r}: the best match") and "weak" in n for n in plan.notes), plan.notes
    assert "weak" in plan.describe() and plan.to_dict()["items"][0]["chosen"]["weak"] is True
    held = rag.plan(lib, "a diamond necklace", backend="board", collection="jewelry")
    assert not held.items[0].chosen.weak and not any("weak" in n for n in held.notes)


def test_backend_limit_keeps_the_best_and_says_what_was_dropped(brief_library):
    lib, _ = brief_library
    plan = rag.plan(lib, BRIEF, backend="gemini", style_collection="brand-style")  # flash image takes 3
    assert plan.limit == 3 and len(plan.chosen) == 3
    assert all(r.role == "item" for r in plan.chosen)
    scores = [r.score for r in plan.chosen]
    assert scores == sorted(scores, reverse=True)
    assert plan.dropped and all("over the limit of 3" in r.note for r in plan.dropped)
    assert min(scores) >= max(r.score for r in plan.dropped if r.role == "item")
    assert len(rag.plan(lib, BRIEF, backend="board", refs=2).chosen) == 2
    assert "dropped" in plan.describe()
    with pytest.raises(QueryError, match="at least 1"):  # not the backend's whole limit, as 0 used to mean
        rag.plan(lib, BRIEF, backend="board", refs=0)


def test_internal_only_assets_never_reach_an_external_backend(own_brief_library, tmp_path):
    from tests.fakes.gemini_server import DEFAULT_KEY, FakeGemini

    lib, root = own_brief_library  # it writes a sidecar into the folder
    secret = root / "jewelry" / "diamond-pendant-necklace.png"
    (root / "jewelry" / "diamond-pendant-necklace.png.json").write_text(json.dumps({"usage": "internal-only"}))
    lib.ingest(root)
    secret_id = next(h.id for h in lib.search("a diamond necklace", k=10) if h.path == str(secret))

    local = rag.plan(lib, "a diamond necklace", backend="board")
    assert secret_id in {r.id for r in local.chosen}  # fine for an offline backend

    with FakeGemini() as fake:
        opts = {"api_key": DEFAULT_KEY, "base_url": fake.base_url}
        plan = rag.plan(lib, "a diamond necklace", backend="gemini", generator_options=opts)
        assert secret_id not in {r.id for r in plan.chosen}
        assert secret_id in {r.id for r in plan.withheld}
        assert "internal-only" in plan.describe()
        result = rag.run(lib, plan, out=tmp_path / "out.png", generator_options=opts)
        sent = [np.asarray(img.convert("RGB")) for req in fake.requests for img in req.images]
    secret_px = np.asarray(Image.open(secret).convert("RGB"))
    assert sent and all(s.shape != secret_px.shape or not np.array_equal(s, secret_px) for s in sent)
    assert result.metadata["asset_id"]

    # a hand-edited plan that smuggles it back in is refused before anything is sent
    plan.chosen.append(next(r for r in plan.withheld if r.id == secret_id))
    with pytest.raises(Exception, match="internal-only"):
        rag.run(lib, plan, generator_options=opts)


def test_generated_image_is_stored_back_as_synthetic_with_lineage(brief_library, tmp_path):
    from tests.fakes.gemini_server import DEFAULT_KEY, FakeGemini

    lib, _ = brief_library
    with FakeGemini() as fake:
        opts = {"api_key": DEFAULT_KEY, "base_url": fake.base_url}
        result = lib.generate(
            "a blue watch and a diamond necklace",
            backend="gemini",
            out=tmp_path / "gen.png",
            generator_options=opts,
            min_fidelity=0.99,
        )
        assert len(fake.requests) == 1
    meta = result.metadata
    assert Path(meta["output_path"]).is_file()
    fid = meta["fidelity"]
    assert len(fid["per_reference"]) == len(meta["plan"]["chosen"]) and -1 <= fid["mean"] <= 1
    assert meta["flagged"] is True and any("below --min-fidelity" in w for w in result.warnings)
    hits = lib.search("a watch", k=50, where='source == "synthetic"')
    assert [h.id for h in hits] == [meta["asset_id"]]
    lineage = hits[0].lineage
    assert lineage["backend"] == "gemini" and lineage["model"] == "gemini-2.5-flash-image"
    assert lineage["brief"] == "a blue watch and a diamond necklace"
    assert {r["id"] for r in lineage["references"]} == {r["id"] for r in meta["plan"]["chosen"]}
    assert lineage["fidelity"]["mean"] == fid["mean"]
    # synthetic assets are not references unless asked for
    plan = rag.plan(lib, "a blue watch", backend="board")
    assert meta["asset_id"] not in {r.id for r in plan.chosen}
    plan = rag.plan(lib, "a blue watch", backend="board", include_synthetic=True)
    assert meta["asset_id"] in {c.id for ip in plan.items for c in ip.candidates} | {r.id for r in plan.chosen}


def test_local_diffusers_output_is_stored_back_end_to_end(brief_library, tmp_path, tiny_sd_checkpoint):
    """The air-gapped path: a local img2img checkpoint (tiny, random weights) through the whole loop."""
    lib, _ = brief_library
    result = lib.generate(
        "a diamond necklace",
        backend=f"diffusers:{tiny_sd_checkpoint}",
        out=tmp_path / "local.png",
        generator_options={"num_inference_steps": 2, "max_side": 128},  # a small output: the loop is the point
    )
    meta = result.metadata
    assert meta["plan"]["limit"] == 1 and len(meta["plan"]["chosen"]) == 1  # img2img takes one init image
    assert Image.open(meta["output_path"]).size[0] > 0
    stored = lib.get(meta["asset_id"])
    assert stored.source == "synthetic" and stored.lineage["backend"] == "diffusers"
    assert stored.collection == "synthetic" and "synthetic" in stored.tags


def test_openai_backend_through_the_loop(brief_library, tmp_path):
    from tests.fakes.openai_server import FakeOpenAI

    lib, _ = brief_library
    with FakeOpenAI() as fake:
        opts = {"api_key": fake.api_key, "base_url": fake.base_url}
        result = lib.generate(BRIEF, backend="openai", out=tmp_path / "o.png", generator_options=opts)
        sent = sum(len(req.files) for req in fake.requests)
    assert sent == len(result.metadata["plan"]["chosen"]) >= len(EXPECTED)
    assert lib.get(result.metadata["asset_id"]).lineage["backend"] == "openai"


def test_cli_generate_dry_run_prints_the_plan_and_writes_the_board(brief_library, tmp_path):
    import os
    import subprocess
    import sys

    lib, _ = brief_library
    uri = lib.settings.uri
    lib.close()  # Milvus Lite: one process at a time
    board = tmp_path / "board.png"
    env = {**os.environ, "ASSETRAG_URI": uri, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "2"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "assetrag.cli",
            "generate",
            BRIEF,
            "--backend",
            "gemini",
            "--dry-run",
            "-o",
            str(board),
            "--style-collection",
            "brand-style",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "item 'diamond necklace' → diamond-pendant-necklace.png" in res.stdout
    assert "takes up to 3 references" in res.stdout and "dropped" in res.stdout
    assert Image.open(board).size[0] > 500


FRENCH_BRIEF = (
    "Un mannequin appuyé sur un cabriolet bleu, vêtu d'une robe longue, portant un collier de diamants et une "
    "montre bleue, un sac à main rouge à la main"
)


def test_a_french_brief_is_split_searched_in_french_and_drawn(brief_library, tmp_path):
    from assetrag.search import Query

    lib, root = brief_library
    plan = rag.plan(lib, FRENCH_BRIEF, backend="board")
    assert plan.lang == "fr" and "brief read as fr" in plan.describe()
    items = {ip.item: ip for ip in plan.items}
    assert list(items) == ["cabriolet bleu", "robe longue", "collier de diamants", "montre bleue", "sac à main rouge"]
    for item, folder in {
        "cabriolet bleu": "vehicles",
        "robe longue": "fashion",
        "collier de diamants": "jewelry",
    }.items():
        assert Path(items[item].chosen.path).relative_to(root).parts[0] == folder, (item, items[item].chosen.path)
    # each item went through the multilingual text side (read from the whole brief); without FreeDict its
    # article-less words alone would be read as English, with it the French word check reads them as French too
    # (the shipped CLDR table translates but does not vote in the word check)
    from assetrag.embedding.french import lexicon

    item = "montre bleue"
    french = lib.query(Query(text=item, k=3, source="ingested", lang="fr"))
    auto = lib.query(Query(text=item, k=3, source="ingested"))
    assert [c.score for c in items[item].candidates] == [round(h.score, 4) for h in french]
    same = [round(h.score, 4) for h in auto] == [round(h.score, 4) for h in french]
    lex = lexicon()
    assert same == (lex is not None and lex.sources["freedict"])
    board = rag.run(lib, plan, backend=get_generator("board"), out=tmp_path / "board.png", store_back=False)
    assert Image.open(board.metadata["output_path"]).size[1] > 400


class Recording:
    """A library that notes every text it is asked to search for (everything else is the real library)."""

    def __init__(self, lib):
        self.lib, self.texts = lib, []

    def query(self, q):
        self.texts.append(q.text)
        return self.lib.query(q)

    def __getattr__(self, name):
        return getattr(self.lib, name)


def test_an_item_that_points_at_a_given_image_is_bound_to_it_not_searched(brief_library, tmp_path, photo_arrays):
    lib, _ = brief_library
    mine = tmp_path / "mine" / "astronaut.jpg"
    mine.parent.mkdir()
    Image.fromarray(photo_arrays["astronaut"]).save(mine, quality=90)
    brief = "A figurine of this character holding a blue watch, on a wooden base"
    recording = Recording(lib)
    plan = rag.plan(recording, brief, backend="board", given=[str(mine)])
    bound = plan.items[0]
    assert bound.item == "figurine of this character" and bound.bound and bound.candidates == []
    assert bound.chosen.filename == "astronaut.jpg" and bound.chosen.role == "given"
    assert "figurine of this character" not in recording.texts and "blue watch" in recording.texts
    assert not any(ip.bound for ip in plan.items[1:])
    assert plan.chosen[0].id == bound.chosen.id and plan.chosen[0].item == "figurine of this character"
    assert "bound to the given image astronaut.jpg" in plan.describe()
    assert "'figurine of this character' refers to" in rag.build_prompt(plan)

    # without a given image the item is searched, and the plan says an image is missing
    unbound = rag.plan(lib, brief, backend="board")
    assert not unbound.items[0].bound and unbound.items[0].candidates
    assert any("none was given" in n for n in unbound.notes)

    # French, through the board: the lineage names the given file; the file is not added to the library
    french = rag.plan(lib, "Une figurine de ce personnage tenant une montre bleue", backend="board", given=[str(mine)])
    assert french.items[0].item == "figurine de ce personnage" and french.items[0].bound
    before = lib.stats()["count"]
    result = rag.run(lib, french, backend=get_generator("board"), out=tmp_path / "board.png", store_back=True)
    stored = lib.get(result.metadata["asset_id"])
    given = [r for r in stored.lineage["references"] if r["role"] == "given"]
    assert given == [
        {
            "id": hashlib.sha256(mine.read_bytes()).hexdigest(),
            "item": "figurine de ce personnage",
            "role": "given",
            "score": 1.0,
            "path": str(mine.resolve()),
            "filename": "astronaut.jpg",
        }
    ]
    assert lib.get(given[0]["id"]) is None and lib.stats()["count"] == before + 1
