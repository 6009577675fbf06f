"""The words of an asset and of a query: what both lexical search paths index and look up.

File names (all copies; split on `-_.`, camelCase and letter/digit boundaries), tags, collection, sidecar
metadata (captions first) and a generated image's brief, lower-cased, stop words dropped, plurals folded
(`document_terms`, `tokenize`). The in-process BM25 index (`search.lexical`) counts these terms itself; a library
whose backend has full-text search stores them, space-separated, in its `text` field (`document_text`, written by
`store.Store.upsert`) and Milvus' BM25 function indexes that field, so the two paths see the same words.
Pure Python: no Milvus, no search (layer 1, below `store` and `search`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

#: words that say nothing about what an asset shows (dropped from documents and queries alike)
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """a an the of and or with without in on at to for from by into onto over under near this that these
        those is are was were be it its their his her some any one two very my our your me show find give get
        want need looking look like photo photos image images picture pictures pic pics img jpg jpeg png webp
        gif tif tiff bmp dsc copy final""",
    )
)
#: metadata keys whose text describes the image (other keys count too, these are simply read first)
CAPTION_KEYS = ("title", "caption", "description", "alt", "keywords", "subject", "name", "product", "label")
MAX_METADATA_CHARS = 2000

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_WORD = re.compile(r"[^\W_]+")


def split_words(text: str) -> list[str]:
    """Lower-case words of `text`: split on anything not a letter or digit (`-`, `_`, `.`, spaces) and on
    camelCase / letter-digit boundaries ("RedCape2025_final.png" → red, cape, 2025, final, png)."""
    text = unicodedata.normalize("NFKC", text or "")
    return [w.casefold() for w in _WORD.findall(_CAMEL.sub(" ", text))]


def stem(word: str) -> str:
    """A light English plural stemmer (S-stemmer): watches → watch, galaxies → galaxy, dress stays."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Index terms of `text`: words, stop words dropped, plurals folded."""
    return [stem(w) for w in split_words(text) if w not in STOPWORDS]


def _strings(value: Any, depth: int = 0) -> Iterable[str]:
    if depth > 3:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v, depth + 1)


def _stem_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def document_terms(row: dict[str, Any]) -> list[str]:
    """The terms of one stored asset: file names (all its copies), tags, collection, sidecar metadata and,
    for generated images, the prompt they were made from."""
    names = dict.fromkeys([row.get("filename") or "", *(_stem_of(p) for p in row.get("paths") or [])])
    parts = [_stem_of(n) for n in names if n]
    tags = list(dict.fromkeys(str(t) for t in row.get("tags") or []))
    collection = str(row.get("collection") or "")
    parts += tags + ([collection] if collection and collection not in tags else [])
    meta = row.get("metadata") or {}
    if isinstance(meta, dict):
        ordered = [meta[k] for k in CAPTION_KEYS if k in meta] + [
            v for k, v in meta.items() if k not in CAPTION_KEYS and k not in ("usage", "source")
        ]
        text = " ".join(_strings(ordered))[:MAX_METADATA_CHARS]
        parts.append(text)
    lineage = row.get("lineage") or {}
    if isinstance(lineage, dict) and isinstance(lineage.get("brief"), str):
        parts.append(lineage["brief"][:MAX_METADATA_CHARS])
    return [t for p in parts for t in tokenize(p)]


#: the longest `text` a row stores (bytes of UTF-8; Milvus' VARCHAR limit is 65,535): longer ones are cut
MAX_TEXT_BYTES = 65_535


def document_text(row: dict[str, Any]) -> str:
    """`document_terms` of `row`, space-separated, cut to `MAX_TEXT_BYTES` at a term boundary: what the `text`
    field of a full-text library holds (Milvus' analyser splits it back into exactly these terms)."""
    text = " ".join(document_terms(row))
    raw = text.encode("utf-8")
    if len(raw) <= MAX_TEXT_BYTES:
        return text
    return raw[:MAX_TEXT_BYTES].decode("utf-8", "ignore").rsplit(" ", 1)[0]


def query_text(text: str) -> str:
    """The query's terms (`tokenize`), space-separated: what a full-text search sends to Milvus."""
    return " ".join(tokenize(text))
