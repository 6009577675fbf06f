"""Lexical side of search: tokenizer, BM25, the per-library index cache, hybrid fusion, query understanding."""

from __future__ import annotations

import itertools
import json

import pytest
from PIL import Image

from assetrag import Query, QueryError, search
from assetrag.search import lexical
from assetrag.search.lexical import LexicalIndex, informativeness, is_wordlike, split_words, stem, tokenize
from assetrag.search.understand import understand

# -- words and BM25 (no store, no model) ------------------------------------------------------------------


def test_split_words_handles_separators_camel_case_and_digits():
    assert split_words("RedCape2025_final-v2.png") == ["red", "cape", "2025", "final", "v", "2", "png"]
    assert split_words("HTMLParser lunar.collection") == ["html", "parser", "lunar", "collection"]
    assert split_words("Café-Crème") == ["café", "crème"]


def test_stem_folds_plurals_only():
    assert [stem(w) for w in ["watches", "galaxies", "shoes", "dress", "glass", "bus", "hats", "cat"]] == [
        "watch",
        "galaxy",
        "shoe",
        "dress",
        "glass",
        "bus",
        "hat",
        "cat",
    ]
    assert tokenize("a photo of the Red-Hats") == ["red", "hat"]  # stop words and "photo" carry nothing


def _row(rid, filename, tags=(), collection="c", metadata=None, mtime=1):
    return {
        "id": rid,
        "filename": filename,
        "paths": [f"/lib/{collection}/{filename}"],
        "tags": list(tags),
        "collection": collection,
        "source": "ingested",
        "metadata": metadata or {},
        "lineage": {},
        "mtime": mtime,
    }


def test_bm25_ranks_rare_and_repeated_terms_higher():
    index = LexicalIndex.build(
        [
            _row("a", "red-cape.png", ["capes"], "lunar-2025"),
            _row("b", "red-shoe.png", ["shoes"]),
            _row("c", "blue-cape.png", ["capes"]),
            _row("d", "IMG_0001.png", metadata={"caption": "A red silk cape with gold trim", "usage": "red"}),
        ]
    )
    ranked = index.search(tokenize("red cape"), 10)
    # both words (in the name, or in a caption) beat one word twice (name + tag), which beats one word once
    assert [rid for rid, _ in ranked] == ["a", "d", "c", "b"]
    assert {rid for rid, _ in ranked} == {"a", "b", "c", "d"}
    assert all(s > 0 for _, s in ranked)
    assert index.search(tokenize("gold trim"), 10)[0][0] == "d"  # sidecar captions count
    assert index.search(tokenize("usage"), 10) == []  # … but not the usage flag
    assert index.search(tokenize("lunar"), 10)[0][0] == "a"  # the collection counts
    assert index.search(tokenize("nothing here"), 10) == []
    only_c = index.allow(collections=["c"], tags=["capes"])
    assert [rid for rid, _ in index.search(tokenize("red cape"), 10, allow=only_c)] == ["c"]
    assert index.collections == ["c", "lunar-2025"] and "capes" in index.tag_names


def test_wordlike_terms_and_informativeness():
    assert all(is_wordlike(t) for t in ["cape", "coffee", "sombrero", "tasse", "café", "strength", "猫"])
    assert not any(
        is_wordlike(t) for t in ["1234", "img", "dsc", "pxl", "dcim", "apple", "f", "d0", "fbe", "xkcdq", "zz"]
    )

    def info(*names):
        return informativeness(tokenize(n) for n in names)

    descriptive = info("red-summer-dress.jpg", "photos/cup-of-coffee.jpg", "sombrero_dave_pena_01.png")
    camera = info("DCIM/100APPLE/IMG_1234.JPG", "DSC_0042.JPG", "PXL_20240105_123456789.jpg", "DSCN0001.JPG")
    hashed = info(
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.png",
        "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d.png",
        "2cf24dba-5fb0-a30e-26e8-3b2ac5b9e29e.jpg",  # a uuid
    )
    assert descriptive > 0.7 and camera < 0.1 and hashed < 0.1
    assert info() == 0.0 and info("") == 0.0
    # the index keeps it: the weight hybrid search gives the lexical side
    index = LexicalIndex.build(
        [_row("a", "red-cape.png", collection="capes"), _row("b", "IMG_0001.png", collection="")]
    )
    assert index.informativeness == pytest.approx(0.5) and index.lexical_weight == pytest.approx(1.0)
    assert [lexical.lexical_weight(i) for i in (0.0, 0.03, 0.1, 0.3, 0.5, 0.9)] == pytest.approx([0, 0, 0, 0.5, 1, 1])


# -- query understanding ----------------------------------------------------------------------------------

COLLECTIONS = ["lunar-2025", "lunar-2024", "photos", "brand-style", "watches"]
TAGS = ["summer", "red", "cats"]


@pytest.mark.parametrize(
    ("text", "field", "values", "left"),
    [
        ("the red cape from the lunar-2025 collection", "collection", ["lunar-2025"], "the red cape"),
        ("red cape Lunar 2025", "collection", ["lunar-2025"], "red cape"),
        ("a cape from luner-2025", "collection", ["lunar-2025"], "a cape"),  # a typo
        ("the lunar collection red cape", "collection", ["lunar-2024", "lunar-2025"], "red cape"),
        ("a brand style guide", "collection", ["brand-style"], "guide"),
        ("anything from 2024", "collection", ["lunar-2024"], "anything"),
        ("cats tagged summer", "tag", ["summer"], "cats"),
        ("#red shoes", "tag", ["red"], "shoes"),
        ("a watch from the watches collection", "collection", ["watches"], "a watch"),
    ],
)
def test_understand_finds_the_librarys_own_names(text, field, values, left):
    u = understand(text, COLLECTIONS, TAGS)
    assert [(f.field, f.values) for f in u.found] == [(field, values)]
    assert u.text == left
    assert field in u.describe()


@pytest.mark.parametrize("text", ["photos of cats", "a red watch", "summer dress", "a cape"])
def test_understand_leaves_ordinary_words_alone(text):
    u = understand(text, COLLECTIONS, TAGS)
    assert not u and u.text == text


def test_understand_keeps_the_words_when_nothing_else_is_left():
    u = understand("the lunar-2025 collection", COLLECTIONS, TAGS)
    assert u.collections == ["lunar-2025"] and u.text == "the lunar-2025 collection"


# -- hybrid search on a real library (Lite and server) ----------------------------------------------------


LAYOUT = {"cat": "animals/cats", "coffee": "things/drinks", "rocket": "things/space", "astronaut": "people"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory, photo_arrays, offline_embedder):
    """A small library on Milvus Lite for the tests that only read (ingested once for the module)."""
    from assetrag import Library

    tmp = tmp_path_factory.mktemp("lexical")
    for name, folder in LAYOUT.items():
        (tmp / "library" / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_arrays[name]).save(tmp / "library" / folder / f"{name}.jpg", quality=90)
    lib = Library(str(tmp / "lib.db"), embedder=offline_embedder)
    lib.ingest(tmp / "library")
    yield lib
    lib.close()


@pytest.fixture
def lib(make_library, photo_dir):
    """A small library on Milvus Lite, for tests that write to it."""
    lib = make_library()
    lib.ingest(photo_dir)
    return lib


@pytest.fixture
def any_lib(make_library, photo_dir, store_uri):
    """The same on Milvus Lite and on a Milvus server."""
    lib = make_library()
    lib.ingest(photo_dir)
    return lib


def test_hybrid_keeps_cosine_scores_and_explains_ranks(shared):
    lib = shared
    vec = {h.id: h for h in lib.search("a cup of coffee", k=5, mode="vector")}
    hyb = lib.search("a cup of coffee", k=5)
    assert hyb[0].filename == "coffee.jpg" and hyb[0].lexical_rank == 1
    assert [h.rank for h in hyb] == [1, 2, 3, 4]
    for h in hyb:
        assert h.score == pytest.approx(vec[h.id].score, abs=1e-5)  # the score is the cosine, unchanged
        assert h.vector_rank == vec[h.id].rank and h.fused_score > 0
    assert all(a.fused_score >= b.fused_score for a, b in itertools.pairwise(hyb))
    assert "fused_score" in hyb[0].to_dict()
    assert all(h.fused_score is None for h in vec.values())  # vector mode: as before


def test_hybrid_without_matching_words_is_the_vector_ranking(shared):
    lib = shared
    a = lib.search("something fluffy", k=5, mode="vector")
    b = lib.search("something fluffy", k=5, mode="hybrid")
    assert [h.id for h in a] == [h.id for h in b]
    assert all(h.lexical_rank is None for h in b)


def test_hybrid_brings_name_matches_the_vector_side_missed(lib, photo_dir, monkeypatch):
    """A file whose name matches but whose picture does not still comes back, with its true cosine."""
    from assetrag.search import hybrid

    monkeypatch.setattr(hybrid, "HYBRID_CANDIDATES", 1)
    Image.open(photo_dir / "animals" / "cats" / "cat.jpg").save(
        photo_dir / "people" / "zanzibar-sunset.jpg", quality=70
    )
    lib.ingest(photo_dir)  # a write: the cached lexical index is rebuilt
    by_meaning = lib.search("zanzibar", k=10, mode="vector")
    assert "zanzibar-sunset.jpg" not in {h.filename for h in by_meaning[:2]}  # not a vector candidate at k=2
    hits = lib.search("zanzibar", k=2, rerank=None)  # (re-ranking widens the vector candidates to its N)
    named = next(h for h in hits if h.filename == "zanzibar-sunset.jpg")
    assert named.lexical_rank == 1 and named.vector_rank is None
    assert named.score == pytest.approx(next(h.score for h in by_meaning if h.id == named.id), abs=1e-5)


def test_hybrid_respects_filters_and_pages(shared):
    lib = shared
    hits = lib.search("a rocket in space", k=10, collection="things")
    assert hits and {h.collection for h in hits} == {"things"}
    assert lib.search("a rocket", k=10, where='collection == "animals"')[0].filename == "cat.jpg"
    assert all(h.filename != "rocket.jpg" for h in lib.search("a rocket", k=10, where='collection == "animals"'))
    first = lib.search("space", k=2)
    second = lib.search("space", k=2, offset=2)
    assert [h.rank for h in second] == [3, 4]
    assert not {h.id for h in first} & {h.id for h in second}
    assert lib.search("a rocket", k=10, min_score=1.01) == []
    with pytest.raises(QueryError, match="mode must be"):
        lib.search("a rocket", mode="bm25")


def test_sidecar_captions_are_searchable(lib, photo_dir):
    (photo_dir / "people" / "camera.jpg.json").write_text(json.dumps({"caption": "vintage Hasselblad"}))
    lib.ingest(photo_dir)
    hits = lib.search("hasselblad", k=3)
    assert hits[0].filename == "camera.jpg" and hits[0].lexical_rank == 1


def test_index_follows_removals_and_writes_it_was_not_told_about(any_lib, photo_dir, monkeypatch):
    lib = any_lib
    monkeypatch.setattr(lexical, "SERVER_RECHECK_S", 0.0)  # a server re-checks at most every 10 s
    monkeypatch.setattr(lexical, "LITE_RECHECK_S", 0.0)  # Lite every second
    assert lib.search("rocket", k=1)[0].lexical_rank == 1
    lib.remove([str(photo_dir / "things" / "space" / "rocket.jpg")])
    # (a server's Session-consistent vector search may still return a just-deleted row for a moment)
    assert all(h.lexical_rank is None for h in lib.search("rocket", k=10))
    # writes straight to the store (no invalidate call): the signature check catches them
    cat = lib.search("a cat", k=1, mode="vector")[0]
    row = lib.store.get([cat.id], (*lexical.INDEX_FIELDS, "vector", "mtimes", "size", "width", "height"))[0]
    row.update(filename="zebra.jpg", mtime=row["mtime"] + 1)  # same count, a newer mtime
    lib.store.upsert([row])
    assert lib.search("zebra", k=1)[0].id == cat.id
    lib.store.delete([cat.id])  # one row fewer
    assert all(h.lexical_rank is None for h in lib.search("zebra", k=10))


def test_query_understanding_turns_names_into_filters(shared):
    lib = shared
    u = lib.understand("a cup of coffee from the things collection")
    assert u.collections == ["things"] and u.text == "a cup of coffee"
    hits = lib.search("a cup of coffee from the things collection", k=10, understand=True)
    assert hits and {h.collection for h in hits} == {"things"}
    # an explicit filter wins over an understood one
    hits = lib.search("a cat from the things collection", k=10, understand=True, collection="animals")
    assert {h.collection for h in hits} == {"animals"}
    # off: the words are searched as given
    assert {h.collection for h in lib.search("coffee from the things collection", k=10)} != {"things"}


def test_any_tags_filter():
    q = Query(text="x", any_tags=["a", 'b"'])
    assert search.build_filter(q) == 'array_contains_any(tags, ["a", "b\\""])'


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_any_tags_filter_selects_in_milvus(any_lib, photo_dir, tmp_path, mode):
    """The `array_contains_any` expression above, run by Milvus (Lite and server): which assets come back."""
    lib = any_lib
    extra = tmp_path / "extra" / "quoted.jpg"
    extra.parent.mkdir()
    Image.new("RGB", (64, 48), (200, 40, 90)).save(extra)
    assert lib.ingest(extra, tags=['b"']).added == 1

    def found(**kw) -> set[str]:
        return {h.filename for h in lib.query(Query(text="a photo", k=20, mode=mode, **kw))}

    assert len(found()) == 6  # unfiltered: everything
    assert found(any_tags=["cats", "space"]) == {"cat.jpg", "rocket.jpg"}
    assert found(any_tags=["people"]) == {"astronaut.jpg", "camera.jpg"}
    assert found(any_tags=['b"', "no-such-tag"]) == {"quoted.jpg"}  # the quote is escaped, not a syntax error
    assert found(any_tags=["no-such-tag"]) == set()
    assert found(any_tags=["drinks", "space", "cats"], tags=["things"]) == {"coffee.jpg", "rocket.jpg"}  # AND


def test_hybrid_over_hashed_names_is_the_vector_ranking(tmp_path, photo_arrays, offline_embedder):
    """Content-hashed names in a camera folder carry no words: the lexical side gets weight 0, so a query whose
    words match the folder (every asset alike) gets exactly the vector ranking back, re-ranked or not."""
    import hashlib

    from assetrag import Library

    root = tmp_path / "roll" / "Camera Roll"
    root.mkdir(parents=True)
    for name, arr in photo_arrays.items():
        path = root / f"{name}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        path.rename(root / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.jpg")
    with Library(str(tmp_path / "lib.db"), embedder=offline_embedder) as lib:
        lib.ingest(tmp_path / "roll")
        index = lexical.lexical_index(lib.store)
        assert index.informativeness < 0.1 and index.lexical_weight == 0.0
        for text in ("a cat in the camera roll", "a rocket, roll 9f"):
            vec = lib.search(text, k=5, mode="vector")
            for rerank in (None, "scores"):
                hyb = lib.search(text, k=5, mode="hybrid", rerank=rerank)
                assert [h.id for h in hyb] == [h.id for h in vec]
                assert hyb.lexical_weight == index.lexical_weight
                assert any("carry few words" in n for n in hyb.notes)
        assert lib.search("a cat", k=5, mode="vector").lexical_weight is None
