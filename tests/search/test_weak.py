"""The calibrated "no good match" line: weak hits in the result, the CLI separator, the API field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assetrag.cli import app
from assetrag.embedding import calibration
from assetrag.embedding.calibration import WEAK_BELOW, weak_threshold
from assetrag.embedding.conse import NAME as CONSE_NAME
from assetrag.embedding.head import NAME_COMBINED
from assetrag.search import SearchHit, mark_weak


def _hit(rank, score, lexical_rank=None):
    h = SearchHit(rank, f"id{rank}", score, "", f"{rank}.png", "", [], "ingested", 1, 1, 1)
    h.lexical_rank = lexical_rank
    return h


def test_each_offline_model_has_a_cut_off():
    for name in (CONSE_NAME, NAME_COMBINED):
        assert 0.0 < weak_threshold(name) < 1.0
    assert weak_threshold("clip:openai/clip-vit-base-patch32") is None and weak_threshold(None) is None


def test_mark_weak_marks_the_tail_under_the_cut_off_only():
    hits = [_hit(1, 0.6), _hit(2, 0.3), _hit(3, 0.5), _hit(4, 0.2), _hit(5, 0.1)]
    assert mark_weak(hits, 0.4) == 3 and [h.weak for h in hits] == [False, False, False, True, True]
    # a word match is evidence of its own: not weak, nor anything above it
    hits = [_hit(1, 0.6), _hit(2, 0.2), _hit(3, 0.1, lexical_rank=1)]
    assert mark_weak(hits, 0.4, lexical_weight=1.0) is None and not any(h.weak for h in hits)
    assert mark_weak([_hit(1, 0.1)], None) is None  # no calibration: nothing is marked
    assert mark_weak([], 0.4) is None


@pytest.fixture
def calibrated(monkeypatch, photo_library):
    """The photo library with its model's cut-off between the best and the second 'a cat' hit."""
    lib = photo_library[0]
    hits = lib.search("a cat", k=5, mode="vector")
    cut = round((hits[0].score + hits[1].score) / 2, 4)
    monkeypatch.setitem(WEAK_BELOW, lib.embedder.name, cut)
    monkeypatch.setattr(calibration, "WEAK_BELOW", WEAK_BELOW)
    return lib, cut


def test_search_result_says_where_weak_hits_start(calibrated):
    lib, cut = calibrated
    res = lib.search("a cat", k=5, mode="vector")
    assert res.weak_below == cut and res.weak_from == 1
    assert [h.weak for h in res] == [False, True, True, True, True]
    assert res.to_dict()["weak_from"] == 1 and res.to_dict()["hits"][1]["weak"] is True
    assert "weaker matches below (score < " in res.weak_line() and "offline:v" in res.weak_line()
    image = lib.search(image=res[0].path, k=3)
    assert image.weak_from is None and not any(h.weak for h in image)  # text queries only


def test_cli_prints_the_line_before_the_weak_hits(calibrated, monkeypatch):
    lib, cut = calibrated
    monkeypatch.setattr("assetrag.cli._lib", lambda: _Borrowed(lib))
    runner = CliRunner()
    res = runner.invoke(app, ["search", "a cat", "--mode", "vector", "-k", "3"], terminal_width=200)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    line = next(i for i, x in enumerate(lines) if "weaker matches below" in x)
    cat = next(i for i, x in enumerate(lines) if "cat.jpg" in x)
    assert cat < line and f"score < {cut:.2f}" in lines[line]
    res = runner.invoke(app, ["search", "a cat", "--mode", "vector", "-k", "3", "--json"])
    assert [h["weak"] for h in json.loads(res.stdout)] == [False, True, True]


def test_api_marks_weak_hits(calibrated):
    from fastapi.testclient import TestClient

    from assetrag.server.app import create_app
    from assetrag.server.config import ServerConfig

    lib, cut = calibrated
    with TestClient(create_app(lib, ServerConfig(roots=[]))) as c:
        page = c.get("/api/search", params={"q": "a cat", "limit": 3, "mode": "vector"}).json()
    assert page["weak_below"] == cut and page["weak_from"] == 1
    assert [i["weak"] for i in page["items"]] == [False, True, True]


class _Borrowed:
    """The test's library as `with _lib() as lib` expects it, without closing it."""

    def __init__(self, lib):
        self.lib = lib

    def __enter__(self):
        return self.lib

    def __exit__(self, *exc):
        return False
