"""Brief → items: the rule-based splitter."""

from __future__ import annotations

import pytest

from assetrag.rag.items import split_brief

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
