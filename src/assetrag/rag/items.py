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
from dataclasses import dataclass

from assetrag.search import detect_language

__all__ = ["brief_language", "points_at_given", "split_brief"]


# One table per language: connectors (cut the brief there, matched as whole words, longest phrase first),
# determiners (dropped at the start of a piece), framing phrases, people (a piece naming one is dropped),
# colours ("black and white dress" stays whole; a lone colour is no item), body parts ("in her hand",
# "à la main": where a thing is worn or held, not a thing), the words for "and", and where a noun phrase
# puts its head (English and German last, "young woman"; French and Spanish first, "femme élégante").
# "de", "à", "en" (French) and "of" are NOT cuts: they build compound nouns ("sac à main", "sac en cuir").
# A brief uses English plus the table of the language `detect_language` reads it as (English words and brand
# names mix into briefs of every language); one it cannot place gets English plus French.
@dataclass(frozen=True)
class _Language:
    connectors: str
    phrases: tuple[str, ...] = ()
    determiners: str = ""
    framing: tuple[str, ...] = ()
    people: str = ""
    colours: str = ""
    body: str = ""
    and_words: str = ""
    head_first: bool = False
    #: "this character", "cette photo", "mon avatar": a determiner that points + a noun for a picture or who is
    #: in it — an item naming one is the image the user gave (`points_at_given`), not a thing to search for
    pointers: str = ""
    given_nouns: str = ""


_TABLES: dict[str, _Language] = {
    "en": _Language(
        connectors="""
and & plus with without featuring alongside on onto in into at by near beside behind under over above below
against wearing wears wear wore worn holding holds hold held carrying carries carry posing poses pose posed
stands standing stand sits sitting sit leans leaning lean walking walks lying lies looking looks smiling smiles
showing shows displaying displays using uses is are was were has have having while who which that""",
        phrases=(
            "as well as", "along with", "together with", "paired with", "next to", "in front of", "on top of",
            "leaning on", "leaning against", "sitting on", "standing on", "standing next to", "lying on",
        ),
        determiners="""a an the some any this that these those her his their its my your our one each every both
another also just only very""",
        framing=(
            "photo of", "photograph of", "picture of", "image of", "shot of", "close-up of", "closeup of",
            "render of", "rendering of", "illustration of", "pair of", "set of",
        ),
        people="""model models woman women man men girl girls boy boys person people lady ladies guy guys child
children kid kids teenager couple family customer mannequin someone somebody she he they it him them we i you""",
        colours="""black white red blue green yellow orange pink purple violet brown grey gray gold golden silver
beige navy""",
        body="hand hands wrist wrists neck arm arms shoulder shoulders head feet foot finger fingers ear ears",
        and_words="and &",
        pointers="this that the my our your these",
        given_nouns="""character characters person photo photos picture pictures image images illustration drawing
avatar player subject artwork sketch selfie portrait figure face""",
    ),
    "fr": _Language(
        connectors="""et avec sans sur dans devant derrière contre sous portant porte portent porté portée tenant
tient tiennent posant posent assise assis debout qui est sont ont vêtu vêtue vêtus vêtues habillé habillée
habillés habillées arborant arbore""",
        phrases=(
            "ainsi que", "près de", "à côté de", "au-dessus de", "appuyée sur", "appuyé sur", "adossée à",
            "adossé à", "en face de", "au milieu de",
        ),
        determiners="""un une des le la les du de d' l' sa son ses leur leurs ce cet cette ces mon ma mes ton ta
tes notre nos votre vos""",
        framing=("photo de", "image de", "paire de"),
        people="""femme femmes homme hommes fille filles garçon garçons enfant enfants personne mannequin
mannequins elle il elles ils""",
        colours="""noir noire blanc blanche rouge bleu bleue vert verte jaune rose gris grise doré dorée argenté
argentée marron""",
        body="main mains poignet poignets cou bras épaule épaules tête pieds pied doigt doigts oreille oreilles",
        and_words="et",
        head_first=True,
        pointers="ce cet cette ces la le l' mon ma mes notre nos votre",
        given_nouns="""personnage personnages personne photo photos image images illustration dessin avatar joueur
joueuse portrait visage croquis""",
    ),
    "de": _Language(
        connectors="""und mit ohne auf an am in im neben vor hinter unter über gegen trägt tragen tragend hält
halten haltend lehnt lehnend angelehnt sitzt sitzend steht stehend posiert posierend ist sind hat haben sowie""",
        phrases=("zusammen mit", "vor einem", "vor einer"),
        determiners="""ein eine einen einem einer eines der die das den dem des ihr ihre ihren ihrem ihrer sein
seine seinen seinem seiner dieser diese dieses diesen mein meine meinen meinem""",
        framing=("foto von", "bild von", "foto eines", "foto einer", "bild eines", "bild einer", "paar"),
        people="""model models frau frauen mann männer mädchen junge jungen person personen kind kinder dame
fotomodell mannequin sie er""",
        colours="""schwarz schwarze schwarzen schwarzer weiß weiße weißen weißer rot rote roten roter blau blaue
blauen blauer grün grüne grünen gelb gelbe gelben rosa grau graue grauen golden goldene silbern silberne braun
braune""",
        body="hand hände handgelenk hals arm arme schulter kopf füße fuß finger ohr",
        and_words="und",
        pointers="dieser diese dieses diesem diesen das die der dem den mein meine meinem meinen unser unsere",
        given_nouns="figur charakter person foto bild zeichnung illustration avatar spieler spielerin porträt gesicht",
    ),
    "es": _Language(
        connectors="""y e con sin sobre en junto delante detrás contra bajo llevando lleva llevan viste vistiendo
vestida vestidas luce luciendo usando sosteniendo sostiene sujetando sujeta posando posa sentada sentado
apoyada apoyado recostada recostado que es está son están tiene tienen""",
        phrases=("junto a", "al lado de", "delante de", "detrás de", "encima de", "así como", "de pie"),
        determiners="""un una unos unas el la los las lo su sus este esta estos estas ese esa esos esas mi mis tu
tus nuestro nuestra del al de""",
        framing=("foto de", "fotografía de", "imagen de", "par de"),
        people="""modelo modelos mujer mujeres hombre hombres chica chicas chico chicos niña niño niños persona
personas señora ella él ellas ellos maniquí""",
        colours="""negro negra blanco blanca rojo roja azul verde amarillo amarilla rosa gris dorado dorada
plateado plateada marrón morado morada""",
        body="mano manos muñeca cuello brazo brazos hombro cabeza pies pie dedo dedos oreja",
        and_words="y e",
        head_first=True,
        pointers="este esta estos estas ese esa el la mi mis nuestro nuestra",
        given_nouns="""personaje persona foto fotografía imagen ilustración dibujo avatar jugador jugadora retrato
cara""",
    ),
}  # fmt: skip
_FALLBACK = "fr"  # a brief the language check cannot place: English plus French (the first users' language)
# "à la main", "au cou", "en main", "at her wrist": a place on the body ending a piece is dropped
_ON_BODY = {"à", "au", "aux", "en", "at", "on", "in", "an", "am"}
_TOKEN_RE = re.compile(r"[^\W_][\w'’\-]*|&|[,;.!?:\n()\"“”«»—–/]")
_HARD_BREAKS = set(',;.!?:\n()"“”«»—–/')
_ELISION_RE = re.compile(r"^(?:l|d|qu|j|s)['’]", re.IGNORECASE)
_OF = {"of", "de", "du", "des", "del", "von"}


@dataclass(frozen=True)
class _Vocabulary:
    """English plus one language's table, as the sets the splitter looks words up in."""

    connectors: frozenset[tuple[str, ...]]
    longest: int
    determiners: frozenset[str]
    framing: tuple[tuple[str, ...], ...]
    people: frozenset[str]
    colours: frozenset[str]
    body: frozenset[str]
    and_words: frozenset[tuple[str, ...]]
    head_first: bool
    pointers: frozenset[str]
    given_nouns: frozenset[str]

    @classmethod
    def of(cls, lang: str) -> _Vocabulary:
        tables = [_TABLES["en"], _TABLES[lang]] if lang != "en" else [_TABLES["en"]]

        def words(attr: str) -> frozenset[str]:
            return frozenset(w.lower() for t in tables for w in getattr(t, attr).split())

        connectors = {tuple(p.split()) for t in tables for p in t.phrases} | {(w,) for w in words("connectors")}
        framing = {tuple(f.split()) for t in tables for f in t.framing}
        return cls(
            connectors=frozenset(connectors),
            longest=max(len(c) for c in connectors),
            determiners=words("determiners"),
            framing=tuple(sorted(framing, key=len, reverse=True)),
            people=words("people"),
            colours=words("colours"),
            body=words("body"),
            and_words=frozenset((w,) for w in words("and_words")),
            head_first=tables[-1].head_first,
            # every language's: a brief too short for the language check still points ("diese Figur")
            pointers=frozenset(w.lower() for t in _TABLES.values() for w in t.pointers.split()),
            given_nouns=frozenset(w.lower() for t in _TABLES.values() for w in t.given_nouns.split()),
        )


_VOCABULARIES = {lang: _Vocabulary.of(lang) for lang in _TABLES}


def brief_language(brief: str) -> str:
    """The language whose table `split_brief` uses for `brief`: 'en', 'fr', 'de' or 'es' ('fr' for a
    non-English brief the check cannot place). Also what `detect_language` reads the whole brief as, which
    its items (short noun phrases without their articles) would no longer show."""
    found = detect_language(brief)
    return found if found in _TABLES else "en" if found == "en" else _FALLBACK


def split_brief(brief: str, lang: str | None = None) -> list[str]:
    """The concrete noun phrases `brief` names, in order, without duplicates (case-insensitive).

    `lang` ('en', 'fr', 'de', 'es') picks the connector table; None reads it from the brief."""
    vocab = _VOCABULARIES[lang if lang in _TABLES else brief_language(brief)]
    tokens = _TOKEN_RE.findall(brief.replace("’", "'"))
    pieces: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _HARD_BREAKS:
            pieces.append([])
            i += 1
            continue
        match = _match_connector(vocab, tokens, i)
        if match:
            phrase = tuple(t.lower() for t in tokens[i : i + match])
            current = _clean(vocab, pieces[-1])
            if phrase in vocab.and_words and len(current) == 1 and current[0].lower() in vocab.colours:
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
        pointer = _pointer_at(vocab, piece)
        words = _drop_on_body(vocab, _drop_owner(vocab, _clean(vocab, piece)))
        if pointer is not None and _pointer_at(vocab, words) is None:
            words = piece[pointer:]  # "this character": keep what points at the given image
        if not words or (pointer is None and (_names_a_person(vocab, words) or _is_filler(vocab, words))):
            continue
        item = " ".join(words)
        key = item.lower()
        if key not in seen:
            seen.add(key)
            items.append(item)
    return items


def points_at_given(item: str, lang: str | None = None) -> bool:
    """True when `item` names the image the user gave rather than a thing to find: "this character",
    "figurine of this character", "the photo", "ce personnage", "cette photo", "mon avatar", "diese Figur",
    "este personaje". `lang` as for `split_brief`."""
    vocab = _VOCABULARIES[lang if lang in _TABLES else brief_language(item)]
    return _pointer_at(vocab, _TOKEN_RE.findall(item.replace("’", "'"))) is not None


def _pointer_at(vocab: _Vocabulary, words: list[str]) -> int | None:
    """Where a pointing determiner + a picture/person noun starts in `words` ("this character", "l'image")."""
    lower = [w.lower() for w in words]
    for i, word in enumerate(lower):
        if _ELISION_RE.match(word) and len(word) > 2 and word[:2] in vocab.pointers:
            if word[2:] in vocab.given_nouns:
                return i
        elif word in vocab.pointers and i + 1 < len(lower) and lower[i + 1] in vocab.given_nouns:
            return i
    return None


def _match_connector(vocab: _Vocabulary, tokens: list[str], i: int) -> int:
    """Length of the longest connector phrase starting at tokens[i], or 0."""
    for n in range(min(vocab.longest, len(tokens) - i), 0, -1):
        if tuple(t.lower() for t in tokens[i : i + n]) in vocab.connectors:
            return n
    return 0


def _clean(vocab: _Vocabulary, words: list[str]) -> list[str]:
    """`words` without leading determiners / framing phrases, elided articles, or trailing fillers."""
    out = list(words)
    changed = True
    while out and changed:
        changed = False
        if _ELISION_RE.match(out[0]) and len(out[0]) > 2:
            out[0] = _ELISION_RE.sub("", out[0])
            changed = True
        if out and out[0].lower() in vocab.determiners:
            out.pop(0)
            changed = True
            continue
        for frame in vocab.framing:
            if tuple(w.lower() for w in out[: len(frame)]) == frame:
                del out[: len(frame)]
                changed = True
                break
    while out and out[-1].lower() in vocab.determiners:
        out.pop()
    return out


def _names_a_person(vocab: _Vocabulary, words: list[str]) -> bool:
    """English and German put the head noun last ("young woman"), French and Spanish first or second
    ("jeune femme élégante")."""
    lower = [w.lower() for w in words]
    if vocab.head_first:
        return any(w in vocab.people for w in lower[:2])
    return lower[-1] in vocab.people


def _drop_owner(vocab: _Vocabulary, words: list[str]) -> list[str]:
    """Remove who owns the thing: "woman's handbag" → "handbag", "écharpe d'une femme" → "écharpe"."""
    if len(words) > 1 and words[0].lower().endswith("'s") and words[0].lower()[:-2] in vocab.people:
        words = words[1:]
    for i, word in enumerate(words[1:], start=1):
        low = word.lower()
        if low in _OF:
            rest = [w.lower() for w in words[i + 1 :]]
        elif low.startswith("d'") and len(low) > 2:
            rest = [low[2:], *(w.lower() for w in words[i + 1 :])]
        else:
            continue
        while rest and rest[0] in vocab.determiners:
            rest.pop(0)
        if 1 <= len(rest) <= 2 and any(w in vocab.people for w in rest):
            return words[:i]
    return words


def _drop_on_body(vocab: _Vocabulary, words: list[str]) -> list[str]:
    """Remove where it is worn or held: "sac à main rouge à la main" → "sac à main rouge", "collier au cou"."""
    for i, word in enumerate(words[1:], start=1):
        if word.lower() not in _ON_BODY:
            continue
        rest = [w.lower() for w in words[i + 1 :]]
        if rest and _ELISION_RE.match(rest[0]) and len(rest[0]) > 2:
            rest[0] = _ELISION_RE.sub("", rest[0])
        while rest and rest[0] in vocab.determiners:
            rest.pop(0)
        if 1 <= len(rest) <= 2 and rest[0] in vocab.body:
            return words[:i]
    return words


def _is_filler(vocab: _Vocabulary, words: list[str]) -> bool:
    """A lone adverb ("proudly"), colour ("the bag is red"), number or body part ("in her hand") left between
    two connectors."""
    if len(words) != 1:
        return False
    word = words[0].lower()
    return (word.endswith("ly") and len(word) > 4) or word.isdigit() or word in vocab.colours or word in vocab.body
