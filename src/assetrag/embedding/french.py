"""French queries for the offline models: a French word check, and dictionary translation into English.

The offline models' own text encoder (all-MiniLM-L6-v2) reads English; `assetrag.embedding.multilingual` carries
other languages into its space with USE → a linear map. For French this module adds two things, both from the
FreeDict French–English dictionary (docs/quality.md, "French closer to English"):

- **the French word check** (`Lexicon.looks_french`): a query with no function word and no accent ("soleil
  levant", "piment rouge") is French when more of its words are French-only (FreeDict fra-eng headwords, their
  plurals and feminines) than English-only (the English side of FreeDict, with English inflections);
- **translation** (`Lexicon.translate`): French words → English ones, longest dictionary phrase first
  ("boîte aux lettres"), elision (l', d', qu'…), plurals (-s, -x, -aux), feminines (-e, -euse, -ive, -elle…) and
  missing accents folded, articles dropped, a handful of prepositions kept, "A de B" made an English compound
  ("tasse de café" → "coffee cup"),
  an adjective after its noun put before it ("dragon rouge" → "red dragon"), unknown words kept as written.
  Where a word has several senses, `choose` (the caller's) picks one — `FrenchText` picks the sense whose MiniLM
  embedding is closest to the query's multilingual (USE → map) embedding, so "bouton" is "button" or "pimple"
  as the rest of the query says.

`FrenchText` is the French text side: MiniLM(translation) averaged with the multilingual vector (weight
`DICT_WEIGHT`, measured on the tune halves), and `lexical_text` gives the lexical (BM25) side the translation too.

**The CLDR table** (`CLDR_TABLE`, shipped): French words and whole emoji names → English, learned by
scripts/build_french_cldr.py from Unicode CLDR's French and English emoji annotations (IBM Model 1 word
alignment), every emoji of the alignment head's test split left out. Its senses come first for the words it knows
("œil" → "eye", "rieurs" → "smiling", which FreeDict lacks), FreeDict's after them; without FreeDict the table
alone translates. The word check reads FreeDict alone (the table's French words include English ones, "surf",
"portable", that FreeDict's English side lacks). `ASSETRAG_FRENCH_CLDR=0` turns it off, `=replace` drops
FreeDict's senses for the words it knows (to measure).

**Licence.** FreeDict fra-eng is GPL-2+; assetrag is Apache-2.0, so no FreeDict data ships in the package. It is
read at run time, when present, from the dictd files of Debian's `dict-freedict-fra-eng` (`/usr/share/dictd`) or
a folder named by `ASSETRAG_FREEDICT` (the `freedict-fra-eng.index` / `.dict.dz` of freedict.org's dictd
download); the English word list comes from the same files (and `freedict-eng-fra` when present). Without them
French queries get the CLDR table alone (or, with it turned off, work as before: the function-word check, USE → map
alone), and `dictionary_note()` says so. The CLDR table is under the Unicode licence (Unicode-DFS-2016), whose
notice its header carries.
"""

from __future__ import annotations

import gzip
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assetrag.embedding.base import l2_normalise

ENV = "ASSETRAG_FREEDICT"
#: French → English words and emoji names learned from Unicode CLDR annotations (scripts/build_french_cldr.py);
#: shipped in the package (Unicode licence), read on first use
CLDR_TABLE = Path(__file__).resolve().parents[1] / "data" / "french-cldr.tsv"
CLDR_ENV = "ASSETRAG_FRENCH_CLDR"
DICT_DIRS = ("/usr/share/dictd", "/usr/local/share/dictd")
FRA_ENG, ENG_FRA = "freedict-fra-eng", "freedict-eng-fra"
INSTALL_HINT = "apt-get install dict-freedict-fra-eng (or point ASSETRAG_FREEDICT at FreeDict's dictd files)"
#: weight of MiniLM(translation) in the French query vector; the rest is USE → map (docs/quality.md)
DICT_WEIGHT = 0.5
MAX_SENSES = 6  # senses per headword kept as candidates
MAX_PHRASE = 4  # words in the longest dictionary phrase tried
MAX_NAME = 8  # … and in the longest CLDR emoji name

# written here (not from FreeDict): articles and the like are dropped, a few prepositions are kept in English
_DROP = frozenset(
    re.findall(
        r"\S+",
        "le la les l' un une des du d' de à au aux ce cet cette ces mon ma mes ton ta tes son sa ses notre nos votre "
        "vos leur leurs qui que qu' dont est sont ne n' se s'",
    )
)
_KEEP = {
    "avec": "with",
    "sans": "without",
    "sur": "on",
    "sous": "under",
    "dans": "in",
    "pour": "for",
    "et": "and",
    "ou": "or",
    "entre": "between",
    "chez": "at",
    "derrière": "behind",
    "devant": "in front of",
}
_OF = "of"  # "de" between two translated words, when not a compound ("drapeau de la France" → "flag of France")
_COMPOUND = "\x00de"
_ELISION = re.compile(r"\b(l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu)'(?=[^\W\d_])")
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*'?|\d+")
_LATIN_WORD = re.compile(r"[a-zà-öø-ÿœæ][a-zà-öø-ÿœæ' -]*")
# French plural and feminine endings → the headword's (tried in order, on the word and its plural-less form)
_FR_ENDINGS = (
    ("eaux", "eau"), ("aux", "al"), ("eux", "eu"), ("s", ""), ("x", ""),
)  # fmt: skip
_FR_FEMININE = (
    ("euse", "eux"), ("rice", "eur"), ("ive", "if"), ("elle", "el"), ("enne", "en"), ("onne", "on"),
    ("ère", "er"), ("ette", "et"), ("tte", "t"), ("ée", "é"), ("e", ""), ("che", "c"), ("que", "c"),
)  # fmt: skip
_EN_ENDINGS = (("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""))


def fold_accents(text: str) -> str:
    """'Fusée' → 'fusee' (lower case, combining marks dropped; œ, æ kept)."""
    nfkd = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in nfkd if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Lower-case words of `text`, elided articles split off ("l'étoile" → "l'", "étoile")."""
    text = unicodedata.normalize("NFC", (text or "").lower().replace("’", "'").replace("`", "'"))
    text = _ELISION.sub(r"\1' ", text)
    return [t if t.endswith("'") and len(t) <= 8 else t.rstrip("'") for t in _TOKEN.findall(text)]


def content_words(text: str) -> str:
    """`text` without its French articles, elisions and kept prepositions ("tenue d'arts martiaux" → "tenue arts
    martiaux"): what a French query gives the lexical side, where "d" or "de" would only meet name fragments
    (the "d" of a "200d" code-point file name)."""
    return " ".join(w for w in tokens(text) if w not in _DROP and w not in _KEEP and not w.endswith("'"))


@dataclass(frozen=True)
class Entry:
    headword: str
    pos: str  # FreeDict's part of speech: "n, masc", "adj", "v", … ("" when missing)
    senses: tuple[str, ...]

    @property
    def is_noun(self) -> bool:
        return self.pos.startswith("n")

    @property
    def is_adjective(self) -> bool:
        return self.pos.startswith("adj")


@dataclass
class Translation:
    """A French text in English: the words (`english`), and what each French word became."""

    english: str
    found: int  # French words (or phrases) the dictionary knew
    words: list[tuple[str, str]] = field(default_factory=list)  # (French, English) in order
    others: list[str] = field(default_factory=list)  # the senses not chosen, of the words found

    @property
    def every_sense(self) -> str:
        """The English words and the senses not chosen (what the lexical side may search)."""
        return " ".join([self.english, *self.others]).strip()


# -- reading FreeDict --------------------------------------------------------------------------------------------


_B64 = {ch: i for i, ch in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64(text: str) -> int:
    n = 0
    for ch in text:
        n = n * 64 + _B64[ch]
    return n


def find_dictionary(name: str = FRA_ENG) -> Path | None:
    """The path stem (…/freedict-fra-eng) of an installed FreeDict dictionary, or None."""
    dirs = [os.environ[ENV]] if os.environ.get(ENV) else list(DICT_DIRS)
    for d in dirs:
        stem = Path(d).expanduser() / name
        if stem.with_suffix(".index").is_file() and stem.with_suffix(".dict.dz").is_file():
            return stem
    return None


def read_dictd(stem: Path) -> list[tuple[str, str, list[str]]]:
    """(headword, part of speech, senses) of every entry of a dictd file pair as FreeDict writes them:
    "headword /ipa/ <pos>" then either one line of senses or numbered lines ("1. pimple", "2. button")."""
    raw = gzip.decompress(stem.with_suffix(".dict.dz").read_bytes())
    out = []
    for line in stem.with_suffix(".index").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00"):
            continue
        start, size = _b64(parts[1]), _b64(parts[2])
        lines = raw[start : start + size].decode("utf-8", "replace").strip().splitlines()
        if len(lines) < 2:
            continue
        head = lines[0]
        pos = m.group(1).strip() if (m := re.search(r"<([^>]*)>", head)) else ""
        word = re.split(r"\s/|\s<", head, maxsplit=1)[0].strip()
        senses: list[str] = []
        for text in lines[1:]:
            text = re.sub(r"^\s*\d+\.\s*", "", re.sub(r"\([^)]*\)|\[[^\]]*\]", "", text))
            for s in re.split(r"[,;]", text):
                s = s.strip().strip(".").strip()
                s = s.lower() if s[:1].isupper() and not s.isupper() else s
                if s and s not in senses and len(s) < 40:
                    senses.append(s)
        if word and senses:
            out.append((word, pos, senses))
    return out


def _key(word: str) -> str:
    return unicodedata.normalize("NFC", word.lower().replace("’", "'"))


def read_cldr_table(path: Path = CLDR_TABLE) -> list[tuple[str, str, list[str]]]:
    """(French word or name, part of speech, English senses) of the CLDR table (scripts/build_french_cldr.py):
    adjectives are "adj", other learned words have no part of speech, whole emoji names are nouns ("n")."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        french, kind, senses = line.split("\t")
        out.append((french, {"name": "n", "adj": "adj"}.get(kind, ""), senses.split("|")))
    return out


def cldr_mode() -> str:
    """How the CLDR table joins FreeDict: `first` (default: its senses before FreeDict's), `replace` (its senses
    instead of FreeDict's for the words it knows) or `off`; `ASSETRAG_FRENCH_CLDR=1|replace|0` (to measure)."""
    value = os.environ.get(CLDR_ENV, "").strip().lower()
    if value in ("0", "off", "no", "false"):
        return "off"
    return "replace" if value == "replace" else "first"


class Lexicon:
    """French headwords → English senses, and the two word lists of the language check."""

    def __init__(
        self,
        entries: Sequence[tuple[str, str, Sequence[str]]],
        english: set[str] | None = None,
        *,
        first: Sequence[tuple[str, str, Sequence[str]]] = (),
        replace: bool = False,
    ) -> None:
        """`entries`: (headword, part of speech, senses), e.g. FreeDict's. `first`: entries whose senses come
        before those of `entries` for the same headword (the CLDR table; `replace`: instead of them), the part
        of speech taken from `entries` when they have one."""
        self.entries: dict[str, Entry] = {}
        for word, pos, senses in entries:
            key = _key(word)
            if key not in self.entries:
                self.entries[key] = Entry(word, pos, tuple(senses[:MAX_SENSES]))
        for word, pos, senses in first:
            key = _key(word)
            old = self.entries.get(key)
            if old is None:
                self.entries[key] = Entry(word, pos, tuple(senses[:MAX_SENSES]))
            else:
                rest = () if replace else tuple(s for s in old.senses if s not in senses)
                self.entries[key] = Entry(old.headword, old.pos or pos, tuple([*senses, *rest][:MAX_SENSES]))
        self.sources = {"freedict": bool(entries), "cldr": bool(first)}
        longest = max((len(tokens(word)) for word, _, _ in first), default=0)
        self.max_phrase = max(MAX_PHRASE, min(MAX_NAME, longest))
        self.folded: dict[str, str] = {}
        for key in self.entries:
            self.folded.setdefault(fold_accents(key), key)
        words = set(english or ())
        for e in self.entries.values():
            for s in e.senses:
                words.update(w for w in re.findall(r"[a-z]+", s.lower()))
        self.english = frozenset(words)
        # the word check reads FreeDict alone: the CLDR table's French words include English ones FreeDict's
        # English side lacks ("surf", "portable", "posture"), which would send English queries to French
        self._check: Lexicon | None = self
        if first:
            self._check = Lexicon(entries, english) if entries else None

    @classmethod
    def from_freedict(
        cls,
        stem: Path | None,
        english_stem: Path | None = None,
        *,
        first: Sequence[tuple[str, str, Sequence[str]]] = (),
        replace: bool = False,
    ) -> Lexicon:
        english: set[str] = set()
        if english_stem is not None:
            for word, _, _ in read_dictd(english_stem):
                english.update(re.findall(r"[a-z]+", word.lower()))
        return cls(read_dictd(stem) if stem is not None else [], english, first=first, replace=replace)

    # -- words -----------------------------------------------------------------------------------------------

    def _exact(self, word: str) -> Entry | None:
        if word in self.entries:
            return self.entries[word]
        key = self.folded.get(fold_accents(word))
        return self.entries[key] if key else None

    def lookup(self, word: str) -> Entry | None:
        """The entry of a French word or phrase, its plural and feminine forms folded (None when unknown)."""
        word = word.strip().lower()
        if not word:
            return None
        found = self._exact(word)
        if found or len(word) < 3 or " " in word:
            return found
        singular = [word] + [word[: -len(a)] + b for a, b in _FR_ENDINGS if word.endswith(a) and len(word) > len(a) + 2]
        for w in singular:
            if (found := self._exact(w)) is not None:
                return found
            for a, b in _FR_FEMININE:
                if w.endswith(a) and len(w) > len(a) + 2 and (found := self._exact(w[: -len(a)] + b)) is not None:
                    return found
        if self.sources["cldr"] and not word.endswith(("s", "x")):
            # the CLDR table has the words as its names wrote them: "rieurs" answers "rieur"
            for plural in (word + "s", word + "x"):
                if (found := self._exact(plural)) is not None:
                    return found
        return None

    def is_english(self, word: str) -> bool:
        """Whether `word` (lower case) is an English word or an inflection of one (plural, -ing, -ed)."""
        if word in self.english:
            return True
        if "-" in word:  # "e-mail", "t-shirt": English when its parts are (the word lists split at hyphens)
            parts = [p for p in word.split("-") if len(p) > 1]
            return word.replace("-", "") in self.english or (bool(parts) and all(map(self.is_english, parts)))
        for a, b in _EN_ENDINGS:
            if word.endswith(a) and len(word) > len(a) + 2:
                stem = word[: -len(a)] + b
                if stem in self.english or (a in ("ing", "ed") and len(stem) > 3 and stem[-1] == stem[-2]
                                            and stem[:-1] in self.english):  # fmt: skip
                    return True
        return False

    def word_votes(self, text: str) -> tuple[int, int]:
        """(French-only words, English-only words) of `text`: in one list and not the other. Articles and
        prepositions are left to the function-word check. FreeDict's words only ((0, 0) without it)."""
        if self._check is not self:
            return self._check.word_votes(text) if self._check is not None else (0, 0)
        fr = en = 0
        for w in tokens(text):
            if w in _DROP or w in _KEEP or w.isdigit() or not _LATIN_WORD.fullmatch(w):
                continue
            is_fr, is_en = self.lookup(w) is not None, self.is_english(w)
            fr += is_fr and not is_en
            en += is_en and not is_fr
        return fr, en

    def known_words(self, text: str) -> int:
        """How many content words of `text` the French dictionary knows (whatever English says)."""
        return sum(1 for w in tokens(text) if w not in _DROP and w not in _KEEP and not w.isdigit() and self.lookup(w))

    def looks_french(self, text: str) -> bool:
        """True when more of the words of `text` are French-only than English-only (see the module doc)."""
        fr, en = self.word_votes(text)
        return fr > en

    # -- translation -----------------------------------------------------------------------------------------

    def translate(self, text: str, choose: Callable[[str, Sequence[str]], str] | None = None) -> Translation:
        """`text` in English words (see the module doc); `choose(french, senses)` picks a sense (default: the
        first)."""
        toks = tokens(text)
        parts: list[tuple[str, str, Entry | None]] = []  # (French, English, entry)
        i = 0
        while i < len(toks):
            for span in range(min(self.max_phrase, len(toks) - i), 1, -1):
                phrase = " ".join(toks[i : i + span]).replace("' ", "'")
                if (e := self._exact(phrase)) is not None:
                    parts.append((phrase, self._sense(phrase, e, choose), e))
                    i += span
                    break
            else:
                w = toks[i]
                i += 1
                if w in ("de", "d'") and parts and parts[-1][2] is not None and i < len(toks) and toks[i] not in _DROP:
                    parts.append((w, _COMPOUND, None))  # "tasse de café": a compound, "coffee cup" (below)
                elif w in ("du", "des", "de", "d'") and parts and parts[-1][2] is not None and i < len(toks):
                    parts.append((w, _OF, None))
                elif w in _DROP:
                    continue
                elif w in _KEEP:
                    parts.append((w, _KEEP[w], None))
                elif (e := self.lookup(w)) is not None:
                    parts.append((w, self._sense(w, e, choose), e))
                elif "-" in w and all(self.lookup(p) for p in w.split("-")):
                    parts.append((w, " ".join(self._sense(p, self.lookup(p), choose) for p in w.split("-")), None))  # type: ignore[arg-type]
                else:
                    parts.append((w, w, None))
        # "A de B" with a bare noun B is an English compound "B A" ("collier de diamants" → "diamond necklace")
        for j in range(len(parts) - 2, 0, -1):
            if parts[j][1] == _COMPOUND:
                b = parts[j + 1][2]
                if b is not None and b.is_noun:
                    parts[j - 1 : j + 2] = [parts[j + 1], parts[j - 1]]
                else:
                    parts[j] = (parts[j][0], _OF, None)
        parts = [p if p[1] != _COMPOUND else (p[0], _OF, None) for p in parts]
        # an adjective after its noun goes before it, as in English ("dragon rouge" → "red dragon")
        for j in range(len(parts) - 1):
            a, b = parts[j][2], parts[j + 1][2]
            content = a.is_noun if a is not None else parts[j][0] not in _KEEP and parts[j][1] != _OF
            before = parts[j - 1][2] if j else None
            if b is not None and b.is_adjective and content and not (before is not None and before.is_adjective):
                parts[j], parts[j + 1] = parts[j + 1], parts[j]
        if parts and parts[-1][1] == _OF:
            parts.pop()
        found = sum(1 for _, _, e in parts if e is not None)
        words = [(fr, en) for fr, en, _ in parts]
        others = list(dict.fromkeys(s for _, en, e in parts if e is not None for s in e.senses if s != en))
        return Translation(" ".join(en for _, en in words) or text.strip(), found, words, others)

    @staticmethod
    def _sense(word: str, entry: Entry, choose: Callable[[str, Sequence[str]], str] | None) -> str:
        if choose is None or len(entry.senses) == 1:
            return entry.senses[0]
        return choose(word, entry.senses)


_lexicon: Lexicon | None = None
_loaded = False
_lock = threading.Lock()


def lexicon() -> Lexicon | None:
    """The process-wide French lexicon: the CLDR table (shipped) first, then the installed FreeDict; the CLDR
    table alone without FreeDict (None when neither is there, or `ASSETRAG_FRENCH_CLDR=0` and no FreeDict).
    Loaded on first use (0.6 s of CPU, 0.5 s of it FreeDict)."""
    global _lexicon, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            stem = find_dictionary(FRA_ENG)
            mode = cldr_mode()
            cldr = read_cldr_table() if mode != "off" and CLDR_TABLE.is_file() else []
            if stem is not None or cldr:
                english = find_dictionary(ENG_FRA) if stem is not None else None
                _lexicon = Lexicon.from_freedict(stem, english, first=cldr, replace=mode == "replace")
        return _lexicon


def reset() -> None:
    """Forget the loaded lexicon (tests; after installing FreeDict)."""
    global _lexicon, _loaded
    with _lock:
        _lexicon, _loaded = None, False
        _recent.clear()


def dictionary_note() -> str | None:
    """A line for `assetrag doctor` when French queries have no FreeDict (None when they do)."""
    lex = lexicon()
    if lex is not None and lex.sources["freedict"]:
        return None
    if lex is not None:
        return (
            "French queries: no FreeDict dictionary, so translation knows only the CLDR emoji vocabulary and the "
            f"French check is weaker ({INSTALL_HINT})"
        )
    return f"French queries: no FreeDict dictionary, so no translation and a weaker French check ({INSTALL_HINT})"


def french_mode() -> str:
    """How French query vectors are made: `both` (default: MiniLM(translation) averaged with USE → map), `map`
    (USE → map alone, as before) or `dict` (MiniLM(translation) alone); `ASSETRAG_FRENCH` overrides it (to
    measure one against the others)."""
    value = os.environ.get("ASSETRAG_FRENCH", "").strip().lower() or "both"
    return value if value in ("both", "map", "dict") else "both"


def dict_weight() -> float:
    raw = os.environ.get("ASSETRAG_FRENCH_WEIGHT", "").strip()
    try:
        return min(1.0, max(0.0, float(raw))) if raw else DICT_WEIGHT
    except ValueError:
        return DICT_WEIGHT


# the translations `FrenchText` made (senses chosen by the query's vector), for the lexical side of the same query
_recent: OrderedDict[str, Translation] = OrderedDict()
_RECENT = 1024


def _remember(text: str, tr: Translation) -> None:
    with _lock:
        _recent[text] = tr
        _recent.move_to_end(text)
        while len(_recent) > _RECENT:
            _recent.popitem(last=False)


def translation_of(text: str) -> Translation | None:
    """The translation `FrenchText` made of `text` lately (None when it has not embedded it)."""
    with _lock:
        return _recent.get(text)


# -- the French text side ----------------------------------------------------------------------------------------


class FrenchText:
    """French texts → vectors in the offline models' MiniLM space: the multilingual (USE → map) vector averaged
    with MiniLM's vector of the dictionary translation (senses chosen by the multilingual vector)."""

    def __init__(self, native: Any, multi: Any, lex: Lexicon, *, mode: str | None = None) -> None:
        self.native, self.multi, self.lex = native, multi, lex
        self.mode = mode or french_mode()
        self.weight = {"map": 0.0, "dict": 1.0}.get(self.mode, dict_weight())
        self.name = f"french:{self.mode}+{getattr(multi, 'name', 'multilingual')}"
        self.dim = getattr(multi, "dim", 384)

    def translate(self, text: str, target: np.ndarray | None = None) -> Translation:
        """The translation of `text`, senses chosen by cosine to `target` (a MiniLM-space vector) when given."""
        if target is None:
            return self.lex.translate(text)

        def choose(_word: str, senses: Sequence[str]) -> str:
            vecs = self.native.embed_texts(list(senses))
            return senses[int(np.argmax(vecs @ target))]

        return self.lex.translate(text, choose)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        mapped = self.multi.embed_texts(texts)
        if self.weight <= 0.0 or len(texts) == 0:
            return mapped
        out = np.array(mapped, dtype=np.float32, copy=True)
        for i, text in enumerate(texts):
            tr = self.translate(text, mapped[i])
            _remember(text.strip(), tr)
            if tr.found == 0:
                continue  # the dictionary knew none of it: the multilingual vector alone
            native = self.native.embed_texts([tr.english])[0]
            out[i] = self.weight * native + (1.0 - self.weight) * mapped[i]
        return l2_normalise(out)

    def __repr__(self) -> str:
        return f"FrenchText(mode={self.mode!r}, weight={self.weight})"
