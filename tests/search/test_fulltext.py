"""Lexical search inside Milvus (schema 4's BM25 function into `text_sparse`) where the backend has it — Milvus
Lite 3.x here — and the in-process index where it does not (the 2.3.5 test server): which path runs, word
queries, filters. Agreement with the in-process index on the sample library: tests/test_sample_library.py."""

from __future__ import annotations

import pytest

from assetrag.search.lexical import LEXICAL_ENV
from assetrag.store import LEXICAL_IN_PROCESS, LEXICAL_MILVUS


@pytest.fixture
def lib(photo_library):  # the five photos of conftest (animals/cats, things/drinks, things/space, people ×2)
    return photo_library[0]


def test_each_backend_takes_its_lexical_path(lib, monkeypatch):
    # Lite's schema has the BM25 field, but words are searched in-process by default there (its per-segment
    # BM25 statistics misrank upserted rows: `lexical.uses_milvus`); the 2.3.5 server has no full text at all
    assert lib.store.fulltext == (not lib.store.is_server)
    assert lib.stats()["lexical"] == LEXICAL_IN_PROCESS
    hits = lib.search("a cat", k=3)
    assert hits.lexical == LEXICAL_IN_PROCESS and hits.to_dict()["lexical"] == LEXICAL_IN_PROCESS
    assert hits[0].filename == "cat.jpg" and hits[0].lexical_rank == 1
    assert lib.search("a cat", k=3, mode="vector").lexical is None  # no lexical side, no path
    monkeypatch.setenv(LEXICAL_ENV, "milvus")  # Milvus' BM25 on request, where the backend has it
    want = LEXICAL_MILVUS if lib.store.fulltext else LEXICAL_IN_PROCESS
    forced = lib.search("a cat", k=3)
    assert forced.lexical == want and lib.stats()["lexical"] == want
    assert forced[0].filename == "cat.jpg" and forced[0].lexical_rank == 1
    monkeypatch.setenv(LEXICAL_ENV, "in-process")  # the in-process index on request (comparisons)
    assert lib.search("a cat", k=3).lexical == LEXICAL_IN_PROCESS


@pytest.mark.parametrize("path", ["milvus", "in-process"])
def test_word_queries_and_filters_on_either_path(lib, path, monkeypatch):
    monkeypatch.setenv(LEXICAL_ENV, path)
    space = lib.search("space", k=5)
    assert space[0].filename == "rocket.jpg" and space[0].lexical_rank == 1
    assert [h.lexical_rank for h in space[1:]] == [None] * (len(space) - 1)  # one asset has the word
    people = lib.search("people", k=5)
    assert {h.filename for h in people if h.lexical_rank} == {"astronaut.jpg", "camera.jpg"}
    # the filter applies to the lexical side too: the word's only asset is outside it
    animals = lib.search("space", k=5, collection="animals")
    assert {h.collection for h in animals} == {"animals"} and all(h.lexical_rank is None for h in animals)
    things = lib.search("people", k=5, where='collection == "things"')
    assert {h.collection for h in things} == {"things"} and all(h.lexical_rank is None for h in things)
    tagged = lib.search("people space", k=5, tags=["space"])
    assert [(h.filename, h.lexical_rank) for h in tagged] == [("rocket.jpg", 1)]


def test_text_search_is_milvus_bm25_through_the_filter(lib):
    if not lib.store.fulltext:
        assert lib.store.text_search("space", 5) == []  # nothing to ask: the in-process index answers
        return
    hits = lib.store.text_search("people", 5, fields=("id", "filename", "collection"))
    assert {h.fields["filename"] for h in hits} == {"astronaut.jpg", "camera.jpg"} and all(h.score > 0 for h in hits)
    assert lib.store.text_search("people", 5, filter='collection == "things"') == []
    assert lib.store.text_search("zanzibar", 5) == [] and lib.store.text_search("  ", 5) == []
