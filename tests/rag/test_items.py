"""Brief → items: the rule-based splitter."""

from __future__ import annotations

import pytest

from assetrag.rag.items import brief_language, points_at_given, split_brief

CASES = [
    (
        "A model poses leaning on a blue convertible sports car. She wears a halter dress, a diamond "
        "necklace and a blue watch, high heels, and holds a Labubu pendant",
        [
            "blue convertible sports car",
            "halter dress",
            "diamond necklace",
            "blue watch",
            "high heels",
            "Labubu pendant",
        ],
    ),
    ("Une femme portant un collier de diamants et une montre bleue", ["collier de diamants", "montre bleue"]),
    (
        "A photo of a red leather handbag on a marble table next to a bottle of perfume",
        ["red leather handbag", "marble table", "bottle of perfume"],
    ),
    (
        "A young man in a black and white striped shirt holding a coffee cup, with sunglasses",
        ["black and white striped shirt", "coffee cup", "sunglasses"],
    ),
    (
        "Un homme assis sur un banc avec un sac à main en cuir et des lunettes de soleil",
        ["banc", "sac à main en cuir", "lunettes de soleil"],
    ),
    ("L'écharpe rouge d'une femme et le chapeau de paille", ["écharpe rouge", "chapeau de paille"]),
    ("Une jeune femme élégante tenant un parfum", ["parfum"]),
    ("a woman's handbag and a model car", ["handbag", "model car"]),
    ("The bag is red. A pair of sunglasses sits proudly on the table.", ["bag", "sunglasses", "table"]),
    (
        "Sneakers; a backpack & a water bottle — on a rooftop at sunset",
        ["Sneakers", "backpack", "water bottle", "rooftop", "sunset"],
    ),
    ("", []),
    ("She smiles.", []),
]


@pytest.mark.parametrize(("brief", "items"), CASES, ids=[c[0][:30] or "empty" for c in CASES])
def test_split_brief(brief, items):
    assert split_brief(brief) == items


def test_duplicates_collapse_case_insensitively_and_order_is_kept():
    assert split_brief("A blue watch, a Blue Watch and a red bag with a blue watch") == ["blue watch", "red bag"]


def test_is_deterministic_and_case_preserving():
    brief = "Model wears a Cartier watch AND a Hermès scarf"
    assert split_brief(brief) == split_brief(brief) == ["Cartier watch", "Hermès scarf"]


FRENCH = (
    "Un mannequin appuyé sur un cabriolet bleu, vêtu d'une robe longue, portant un collier de diamants et une "
    "montre bleue, un sac à main rouge à la main"
)
FOREIGN = [
    (FRENCH, "fr", ["cabriolet bleu", "robe longue", "collier de diamants", "montre bleue", "sac à main rouge"]),
    (
        "Une femme vêtue d'un manteau violet, tenant un parapluie, à côté de une voiture rouge avec des lunettes",
        "fr",
        ["manteau violet", "parapluie", "voiture rouge", "lunettes"],
    ),
    (
        "Ein Model lehnt an einem blauen Cabrio, trägt ein langes Kleid, eine Diamantkette und eine blaue Uhr, eine "
        "rote Handtasche in der Hand",
        "de",
        ["blauen Cabrio", "langes Kleid", "Diamantkette", "blaue Uhr", "rote Handtasche"],
    ),
    (
        "Una modelo apoyada en un descapotable azul, con un vestido largo, un collar de diamantes y un reloj azul, "
        "un bolso rojo en la mano",
        "es",
        ["descapotable azul", "vestido largo", "collar de diamantes", "reloj azul", "bolso rojo"],
    ),
]


@pytest.mark.parametrize(("brief", "lang", "items"), FOREIGN, ids=[c[1] + str(i) for i, c in enumerate(FOREIGN)])
def test_split_french_german_spanish_briefs(brief, lang, items):
    assert brief_language(brief) == lang
    assert split_brief(brief) == items


def test_a_language_table_is_only_used_for_its_language():
    # Spanish "en" cuts ("apoyada en"); French "en" builds a compound ("sac en cuir") and must not cut
    assert split_brief("Une femme avec un sac en cuir et une montre") == ["sac en cuir", "montre"]
    assert split_brief("Una mujer con un bolso en la mano y un reloj") == ["bolso", "reloj"]
    # an English brief is not cut at French words ("porte" = door)
    assert split_brief("A red porte cochere and a blue door") == ["red porte cochere", "blue door"]


POINTING = [
    ("A figurine of this character holding a sword, on a wooden base", ["figurine of this character"]),
    ("This person wearing a blue hat and sunglasses", ["This person"]),
    ("The photo in a golden frame", ["The photo"]),
    ("Une figurine de ce personnage tenant une épée", ["figurine de ce personnage"]),
    ("Mon avatar portant une veste rouge et des baskets", ["Mon avatar"]),
    ("Cette photo avec un cadre doré", ["Cette photo"]),
    ("Diese Figur mit einem Schwert", ["Diese Figur"]),
]


@pytest.mark.parametrize(("brief", "pointing"), POINTING, ids=[c[0][:25] for c in POINTING])
def test_items_that_point_at_a_given_image_are_kept_and_recognised(brief, pointing):
    items = split_brief(brief)
    assert [i for i in items if points_at_given(i)] == pointing
    assert len(items) > len(pointing) or brief.startswith("The photo")


def test_things_are_not_mistaken_for_a_given_image():
    for item in ["red dress", "photo frame", "character figurine", "portrait lens", "a woman", "une photo"]:
        assert not points_at_given(item), item
    assert split_brief("A photo of a woman in a red dress") == ["red dress"]
