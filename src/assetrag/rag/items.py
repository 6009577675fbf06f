"""Split a generation brief into the concrete things it names — offline, deterministic, rule-based.

    >>> split_brief("A model poses leaning on a blue convertible sports car. She wears a halter "
    ...             "dress, a diamond necklace and a blue watch, high heels, and holds a Labubu pendant")
    ['blue convertible sports car', 'halter dress', 'diamond necklace', 'blue watch', 'high heels', 'Labubu pendant']

How: the brief is cut at punctuation (, ; . ! ? : and line breaks) and at connector words —
conjunctions, prepositions and the verbs briefs use to attach things ("and", "with", "on",
"leaning on", "wears", "holding", and French "et", "avec", "sur", "portant", ...). Each piece then
loses its leading determiners and framing ("a", "her", "une", "l'", "a photo of"), and pieces
that name a person ("a model", "she", "une femme") are dropped. "black and white dress" stays whole
(a lone colour before "and" joins the next piece), and so do compounds built with "of" / "de" / "à"
("bottle of perfume", "collier de diamants", "sac à main"). No NLP model is involved: it is
predictable and fast, and it misses what a parser would catch (a connector word used as a noun,
e.g. French "porte" = door, cuts the brief there).
"""

from __future__ import annotations

import re

__all__ = ["split_brief"]

# Connectors, matched as whole words, longest phrase first. "de", "à", "en" and "of" are NOT cuts:
# they build compound nouns ("sac à main", "collier de diamants", "sac en cuir").
_CONNECTOR_WORDS = """
and & plus with without featuring alongside on onto in into at by near beside behind under over above below
against wearing wears wear wore worn holding holds hold held carrying carries carry posing poses pose posed
stands standing stand sits sitting sit leans leaning lean walking walks lying lies looking looks smiling smiles
showing shows displaying displays using uses is are was were has have having while who which that
et avec sans sur dans devant derrière contre sous portant porte portent porté portée tenant tient tiennent
posant posent assise assis debout qui est sont ont
"""
_CONNECTOR_PHRASES = [
    "as well as", "along with", "together with", "paired with", "next to", "in front of", "on top of",
    "leaning on", "leaning against", "sitting on", "standing on", "standing next to", "lying on",
    "ainsi que", "près de", "à côté de", "au-dessus de", "appuyée sur", "appuyé sur", "adossée à", "adossé à",
]  # fmt: skip
_DETERMINERS = """
a an the some any this that these those her his their its my your our one each every both another
also just only very
un une des le la les du de d' l' sa son ses leur leurs ce cet cette ces mon ma mes ton ta tes notre nos votre vos
"""
# Leading phrases that frame the picture rather than name a thing in it.
_FRAMING = [
    "photo of", "photograph of", "picture of", "image of", "shot of", "close-up of", "closeup of",
    "render of", "rendering of", "illustration of", "pair of", "set of",
    "photo de", "image de", "paire de",
]  # fmt: skip
_PEOPLE = """
model models woman women man men girl girls boy boys person people lady ladies guy guys child children kid kids
teenager couple family customer mannequin someone somebody she he they it him them we i you
femme femmes homme hommes fille filles garçon garçons enfant enfants personne mannequins elle il elles ils
"""
_COLOURS = """
black white red blue green yellow orange pink purple violet brown grey gray gold golden silver beige navy
noir noire blanc blanche rouge bleu bleue vert verte jaune rose gris grise doré dorée argenté argentée marron
"""

_TOKEN_RE = re.compile(r"[^\W_][\w'’\-]*|&|[,;.!?:\n()\"“”«»—–/]")
_HARD_BREAKS = set(',;.!?:\n()"“”«»—–/')
_ELISION_RE = re.compile(r"^(?:l|d|qu|j|s)['’]", re.IGNORECASE)


def _connector_phrases() -> list[tuple[str, ...]]:
    phrases = {tuple(p.split()) for p in _CONNECTOR_PHRASES} | {(w,) for w in _CONNECTOR_WORDS.split()}
    return sorted(phrases, key=len, reverse=True)


_CONNECTORS = _connector_phrases()
_MAX_CONNECTOR = max(len(p) for p in _CONNECTORS)
_CONNECTOR_SET = set(_CONNECTORS)
_DETERMINER_SET = set(_DETERMINERS.split())
_PEOPLE_SET = set(_PEOPLE.split())
_COLOUR_SET = set(_COLOURS.split())
_FRAMING_TUPLES = sorted((tuple(f.split()) for f in _FRAMING), key=len, reverse=True)
_AND = {("and",), ("et",), ("&",)}
_FRENCH_MARKERS = set(
    "un une des le la les du et avec sur dans portant porte tenant sa son ses est sont".split()  # noqa: SIM905
)
_ENGLISH_MARKERS = set(
    "a an the and with on in wearing wears holding holds her his its is are of".split()  # noqa: SIM905
)
_OF = {"of", "de", "du", "des"}


def split_brief(brief: str) -> list[str]:
    """The concrete noun phrases `brief` names, in order, without duplicates (case-insensitive)."""
    tokens = _TOKEN_RE.findall(brief.replace("’", "'"))
    french = _looks_french(tokens)
    pieces: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _HARD_BREAKS:
            pieces.append([])
            i += 1
            continue
        match = _match_connector(tokens, i)
        if match:
            phrase = tuple(t.lower() for t in tokens[i : i + match])
            current = _clean(pieces[-1])
            if phrase in _AND and len(current) == 1 and current[0].lower() in _COLOUR_SET:
                pieces[-1].append(tokens[i])  # "black and white dress": keep together
            else:
                pieces.append([])
            i += match
            continue
        pieces[-1].append(tok)
        i += 1

    items: list[str] = []
    seen: set[str] = set()
    for piece in pieces:
        words = _drop_owner(_clean(piece))
        if not words or _names_a_person(words, french) or _is_filler(words):
            continue
        item = " ".join(words)
        key = item.lower()
        if key not in seen:
            seen.add(key)
            items.append(item)
    return items


def _match_connector(tokens: list[str], i: int) -> int:
    """Length of the longest connector phrase starting at tokens[i], or 0."""
    for n in range(min(_MAX_CONNECTOR, len(tokens) - i), 0, -1):
        if tuple(t.lower() for t in tokens[i : i + n]) in _CONNECTOR_SET:
            return n
    return 0


def _clean(words: list[str]) -> list[str]:
    """`words` without leading determiners / framing phrases, elided articles, or trailing fillers."""
    out = list(words)
    changed = True
    while out and changed:
        changed = False
        if _ELISION_RE.match(out[0]) and len(out[0]) > 2:
            out[0] = _ELISION_RE.sub("", out[0])
            changed = True
        if out and out[0].lower() in _DETERMINER_SET:
            out.pop(0)
            changed = True
            continue
        for frame in _FRAMING_TUPLES:
            if tuple(w.lower() for w in out[: len(frame)]) == frame:
                del out[: len(frame)]
                changed = True
                break
    while out and out[-1].lower() in _DETERMINER_SET:
        out.pop()
    return out


def _looks_french(tokens: list[str]) -> bool:
    lower = [t.lower() for t in tokens]
    french = sum(t in _FRENCH_MARKERS or bool(_ELISION_RE.match(t)) for t in lower)
    english = sum(t in _ENGLISH_MARKERS for t in lower)
    return french > english


def _names_a_person(words: list[str], french: bool) -> bool:
    """English puts the head noun last ("young woman"), French first or second ("jeune femme élégante")."""
    lower = [w.lower() for w in words]
    if french:
        return any(w in _PEOPLE_SET for w in lower[:2])
    return lower[-1] in _PEOPLE_SET


def _drop_owner(words: list[str]) -> list[str]:
    """Remove who owns the thing: "woman's handbag" → "handbag", "écharpe d'une femme" → "écharpe"."""
    if len(words) > 1 and words[0].lower().endswith("'s") and words[0].lower()[:-2] in _PEOPLE_SET:
        words = words[1:]
    for i, word in enumerate(words[1:], start=1):
        low = word.lower()
        if low in _OF:
            rest = [w.lower() for w in words[i + 1 :]]
        elif low.startswith("d'") and len(low) > 2:
            rest = [low[2:], *(w.lower() for w in words[i + 1 :])]
        else:
            continue
        while rest and rest[0] in _DETERMINER_SET:
            rest.pop(0)
        if 1 <= len(rest) <= 2 and any(w in _PEOPLE_SET for w in rest):
            return words[:i]
    return words


def _is_filler(words: list[str]) -> bool:
    """A lone adverb ("proudly"), colour ("the bag is red") or number left between two connectors."""
    if len(words) != 1:
        return False
    word = words[0].lower()
    return (word.endswith("ly") and len(word) > 4) or word.isdigit() or word in _COLOUR_SET
