"""Re-ranking of the top-N (`Query.rerank`, `assetrag.rerank`): the maths, on a real library, and the options."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from assetrag import Query, QueryError
from assetrag.cli import _rerank, app
from assetrag.errors import ConfigError
from assetrag.evaluate import parse_config
from assetrag.search.lexical import lexical_index, tokenize
from assetrag.search.rerank import reorder, score_mix, standardise
from assetrag.store import LEXICAL_MILVUS


@pytest.fixture
def lib(photo_library):  # the five photos of conftest, shared per module and backend (read-only here)
    return photo_library[0]


def _names(hits):
    return [h.filename for h in hits]


# -- the maths -----------------------------------------------------------------------------------------------


def test_standardise_score_mix_and_reorder():
    assert np.allclose(standardise(np.array([1.0, 2.0, 3.0])), [-1.224745, 0.0, 1.224745])
    assert not standardise(np.array([0.4, 0.4])).any()  # all equal: no information, all zeros
    # no lexical match at all: the cosine order, whatever the scale of the cosines
    assert reorder(score_mix([0.2, 0.3, 0.1], [0, 0, 0])) == [1, 0, 2]
    assert reorder(score_mix([0.9, 0.91, 0.5], [0, 10.0, 0])) == [1, 0, 2]
    # a strong name match beats a slightly better cosine; equal BM25 leaves it to the cosine
    assert reorder(score_mix([0.30, 0.29, 0.10], [0.0, 8.0, 0.0])) == [1, 0, 2]
    assert reorder(score_mix([0.29, 0.30, 0.10], [5.0, 5.0, 0.0])) == [1, 0, 2]
    assert len(score_mix([], [])) == 0
    assert reorder(np.array([1.0, 1.0, 2.0])) == [2, 0, 1]  # ties keep the search's order


# -- on a real library ---------------------------------------------------------------------------------------


def test_scores_rescores_hybrid_by_cosine_and_bm25(lib):
    text = "a cat, people"
    plain = lib.search(text, k=5, rerank=None)
    hits = lib.search(text, k=5, rerank="scores")
    assert sorted(_names(hits)) == sorted(_names(plain)) and [h.rank for h in hits] == [1, 2, 3, 4, 5]
    # both people photos match "people" alike: RRF orders them by their lexical rank, `scores` by the cosine
    assert _names(plain)[:3] == ["cat.jpg", "astronaut.jpg", "camera.jpg"]
    assert _names(hits)[:3] == ["cat.jpg", "camera.jpg", "astronaut.jpg"]
    by_name = {h.filename: h for h in hits}
    assert by_name["camera.jpg"].score > by_name["astronaut.jpg"].score
    # the rerank score is z(cosine) + z(BM25) over the candidates (all five here), computed by hand
    if hits.lexical == LEXICAL_MILVUS:  # the BM25 scores of the path that ran (the same scores: test_lexical)
        bm25 = {h.id: h.score for h in lib.store.text_search(" ".join(tokenize(text)), 10)}
    else:
        bm25 = dict(lexical_index(lib.store).search(tokenize(text), 10))
    expected = score_mix([h.score for h in hits], [bm25.get(h.id, 0.0) for h in hits])
    assert np.allclose([h.rerank_score for h in hits], expected, atol=1e-4)
    assert all(a.rerank_score >= b.rerank_score for a, b in itertools.pairwise(hits))
    assert all(h.fused_score is not None for h in hits)  # how it got into the candidates stays visible
    # no query word in any name: the vector ranking, as plain hybrid
    vec = lib.search("a photo", k=5, mode="vector")
    assert _names(lib.search("a photo", k=5, rerank="scores")) == _names(vec)
    # vector and image-only searches have no lexical side: `scores` changes nothing there
    vector = lib.search(text, k=5, mode="vector", rerank="scores")
    assert _names(vector) == _names(lib.search(text, k=5, mode="vector"))
    assert all(h.rerank_score is None for h in vector)
    image = lib.search(image=vector[0].path, k=3, rerank="scores")
    assert image[0].filename == vector[0].filename and image[0].rerank_score is None


def test_rerank_is_a_no_op_for_n_up_to_one_and_respects_k_offset_filters(lib):
    text = "a cat, people"
    plain = lib.search(text, k=5, rerank=None)
    for n in (0, 1):
        same = lib.search(text, k=5, rerank="scores", rerank_n=n)
        assert _names(same) == _names(plain) and all(h.rerank_score is None for h in same)
    full = lib.search(text, k=5, rerank="scores")
    assert _names(full) != _names(plain)
    pages = lib.search(text, k=2, rerank="scores") + lib.search(text, k=2, offset=2, rerank="scores")
    assert _names(pages) == _names(full)[:4] and [h.rank for h in pages] == [1, 2, 3, 4]
    # only the first N are re-ranked; the rest keep the fused order and get no rerank score
    three = lib.search(text, k=5, rerank="scores", rerank_n=3)
    assert _names(three) == _names(full)[:3] + _names(plain)[3:]
    assert [h.rerank_score is None for h in three] == [False, False, False, True, True]
    people = lib.search(text, k=5, rerank="scores", collection="people")
    assert _names(people) == ["camera.jpg", "astronaut.jpg"]  # the filter holds; the order is the cosine's
    assert all(h.score >= 0.2 for h in lib.search(text, k=5, rerank="scores", min_score=0.2))
    assert len(lib.search(text, k=1, offset=4, rerank="scores")) == 1


def test_bad_rerank_options_say_what_to_do(lib):
    with pytest.raises(QueryError, match="rerank must be one of scores"):
        lib.search("a cat", rerank="prf")
    with pytest.raises(QueryError, match="rerank N"):
        Query(text="a cat", rerank="scores", rerank_n=-1).validate()


# -- the options ---------------------------------------------------------------------------------------------


def test_cli_rerank_options_parse():
    assert _rerank("none") is None and _rerank("OFF") is None and _rerank("Scores") == "scores"
    with pytest.raises(typer.BadParameter, match="--rerank takes none, scores"):
        _rerank("bogus")
    base = {"model": "offline:v1", "mode": "hybrid", "templates": None, "understand": False, "lang": "auto"}
    base |= {"rerank": None, "rerank_n": 100}
    cfg = parse_config("rerank=scores,rerank_n=50", base)
    assert cfg["rerank"] == "scores" and cfg["rerank_n"] == 50 and cfg["mode"] == "hybrid"
    assert parse_config("rerank=none", {**base, "rerank": "scores"})["rerank"] is None
    for bad in ("rerank_n=many", "rerank=prf"):
        with pytest.raises(ConfigError):
            parse_config(bad, base)


def test_search_and_eval_commands_take_rerank(tmp_path, photo_dir, monkeypatch):
    monkeypatch.setenv("ASSETRAG_TORCH_THREADS", "2")
    uri = str(tmp_path / "rr.db")
    runner = CliRunner()
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps(q)
            for q in (
                {"query": "a cat", "relevant": ["animals/cats/cat.jpg"]},
                {"query": "a cat, people", "relevant": ["people/camera.jpg"]},
            )
        )
    )
    base = ["--uri", uri, "--model", "offline:v1"]
    args = [*base, "eval", str(queries), "--root", str(photo_dir), "--ingest", "--no-understand", "--json"]
    res = runner.invoke(app, [*args, "--rerank", "scores", "--compare", "rerank=none", "--compare", "rerank_n=1"])
    assert res.exit_code == 0, res.output
    reports = json.loads(res.stdout[res.stdout.index("[") :])
    assert [(r["config"]["rerank"], r["config"]["rerank_n"]) for r in reports] == [
        ("scores", 100),
        (None, None),
        ("scores", 1),
    ]
    ranks = [{q["id"]: q["ranks"] for q in r["queries"]} for r in reports]
    assert ranks[0]["a cat, people"] == [2] and ranks[1]["a cat, people"] == ranks[2]["a cat, people"] == [3]
    res = runner.invoke(app, [*base, "search", "a cat, people", "--rerank", "scores", "--no-understand", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert hits[1]["filename"] == "camera.jpg" and hits[0]["rerank_score"] is not None
    res = runner.invoke(app, [*base, "search", "a cat", "--rerank", "bogus"])
    assert res.exit_code != 0 and "--rerank takes" in res.output
