"""Search: text, image, text+image, filters, scores, pagination, find-similar."""

from __future__ import annotations

import itertools

import pytest

from assetrag import Query, QueryError
from assetrag.search import build_filter


@pytest.fixture
def lib(photo_library):  # one library per backend (Milvus Lite, a server), shared: these tests only read
    return photo_library[0]


@pytest.fixture
def root(photo_library):
    return photo_library[1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("a cat", "cat.jpg"), ("a cup of coffee", "coffee.jpg"), ("a rocket", "rocket.jpg")],
)
def test_text_query_ranks_the_right_photo_first(lib, query, expected):
    hits = lib.search(query, k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert hits[0].filename == expected
    assert hits[0].score > hits[1].score
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_image_query_finds_the_same_image_first(lib, root):
    hits = lib.search(image=root / "things" / "space" / "rocket.jpg", k=3)
    assert hits[0].filename == "rocket.jpg" and hits[0].score > 0.99


def test_text_plus_image_blends_both(lib, root):
    cat = root / "animals" / "cats" / "cat.jpg"
    only_image = lib.search(image=cat, k=5)
    blended = lib.search("a cup of coffee", image=cat, k=5, text_weight=0.9)
    assert only_image[0].filename == "cat.jpg"
    assert blended[0].filename == "coffee.jpg"


def test_filters_collection_tag_where_and_min_score(lib):
    assert {h.collection for h in lib.search("a photo", k=10, collection="things")} == {"things"}
    assert [h.filename for h in lib.search("a photo", k=10, tags=["space"])] == ["rocket.jpg"]
    assert {h.filename for h in lib.search("a photo", k=10, collection=["animals", "people"])} == {
        "cat.jpg",
        "astronaut.jpg",
        "camera.jpg",
    }
    wide = lib.search("a photo", k=10, where="width >= 512")
    assert wide and all(h.width >= 512 for h in wide)
    assert lib.search("a cat", k=10, min_score=1.01) == []
    assert lib.search("a photo", k=10, source="synthetic") == []


def test_offset_pages_through_results(lib):
    first = lib.search("a photo", k=2)
    second = lib.search("a photo", k=2, offset=2)
    assert [h.rank for h in second] == [3, 4]
    assert not {h.id for h in first} & {h.id for h in second}


def test_similar_excludes_itself(lib):
    cat = lib.search("a cat", k=1)[0]
    similar = lib.similar(cat.id, k=3)
    assert len(similar) == 3 and cat.id not in {h.id for h in similar}
    assert [h.rank for h in similar] == [1, 2, 3]


def test_bad_queries_say_what_to_do(lib, tmp_path):
    with pytest.raises(QueryError, match="give a text query"):
        lib.search()
    with pytest.raises(QueryError, match="does not exist"):
        lib.search(image=tmp_path / "nope.png")
    with pytest.raises(QueryError, match="refused by Milvus"):
        lib.search("a cat", where="this is not ( a filter")
    with pytest.raises(QueryError, match="source must be"):
        lib.search("a cat", source="made-up")


def test_filter_expression_quotes_values():
    q = Query(text="x", collection='lunar "2025"', tags=["a\\b"], source="synthetic", where="width > 5")
    assert build_filter(q) == (
        'collection == "lunar \\"2025\\"" and array_contains(tags, "a\\\\b") and source == "synthetic" and (width > 5)'
    )


def test_the_result_says_how_the_query_was_read(lib, root):
    """One query path: the result object carries the hits and what was understood, the mode, the encoder."""
    result = lib.search("a rocket from the things collection", k=3, understand=True)
    assert result.understood is not None and result.understood.collections == ["things"]
    assert result.applied and result.mode == "hybrid" and result.encoder == "model"
    assert {h.collection for h in result} == {"things"} and result[0].filename == "rocket.jpg"
    as_api = result.to_dict()
    assert as_api["understood"]["applied"] is True and as_api["hits"][0]["filename"] == "rocket.jpg"
    by_image = lib.search(image=root / "things" / "space" / "rocket.jpg", k=1)
    assert by_image.mode == "vector" and by_image.understood is None and by_image.encoder is None
    given = lib.search("a rocket from the things collection", k=3, collection="animals", understand=True)
    assert not given.applied and {h.collection for h in given} == {"animals"}  # an explicit filter wins


def test_a_query_filter_of_ids_is_built_by_the_store(lib):
    first = lib.search("a cat", k=2)
    only = lib.query(Query(text="a cat", k=5, ids=[first[1].id]))
    assert [h.id for h in only] == [first[1].id]
