"""The offline reference board, drawn by assetrag.render."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from assetrag.generation import GenerationOptions, GenerationOptionsError, Reference, get_generator
from assetrag.generation.board import board_sections
from fakes.images import make_image


def _refs() -> list[Reference]:
    return [
        Reference(id="s1", image=make_image(1), label="style", score=0.5),
        Reference(id="w1", image=make_image(2), path="/lib/watch-1.jpg", label="blue watch", score=0.91),
        Reference(id="n1", image=make_image(3), label="diamond necklace", score=0.8),
        Reference(id="w2", image=make_image(4), path="/lib/watch-2.jpg", label="blue watch", score=0.7),
    ]


def test_sections_follow_the_brief_with_style_last():
    sections = board_sections(_refs())
    assert [name for name, _ in sections] == ["blue watch", "diamond necklace", "style references"]
    watch_tiles = sections[0][1]
    assert [(t.label, t.score) for t in watch_tiles] == [("watch-1.jpg", 0.91), ("watch-2.jpg", 0.7)]
    assert sections[2][1][0].label == "s1"  # no path: the id


def test_board_is_one_deterministic_image():
    gen = get_generator("board")
    assert gen.external is False and gen.max_reference_images == 24
    result = gen.generate("A model wears a blue watch and a diamond necklace", _refs())
    assert len(result.images) == 1 and result.image.mode == "RGB"
    assert result.backend == "board" and result.model == "reference-board"
    assert result.reference_ids == ["s1", "w1", "n1", "w2"]
    assert result.metadata["sections"] == ["blue watch", "diamond necklace", "style references"]
    again = gen.generate("A model wears a blue watch and a diamond necklace", _refs())
    assert np.array_equal(np.asarray(result.image), np.asarray(again.image))
    # one or two references per item: one compact grid, so fewer references make a narrower board
    fewer = gen.generate("A model wears a blue watch and a diamond necklace", _refs()[1:2])
    assert fewer.image.width < result.image.width
    # an item with many candidates gets its own labelled row instead
    many = gen.generate("a blue watch", [*_refs(), *_refs()[1:2], *_refs()[3:4]])
    assert many.image.height > result.image.height


def test_board_saves_with_lineage(tmp_path):
    result = get_generator("board").generate("brief", _refs()[:2])
    (path,) = result.save(tmp_path)
    assert path.name == "generated-0.png" and path.stat().st_size > 0
    # the lineage is read back from the PNG's text chunk, and the pixels are the board's
    with Image.open(path) as saved:
        saved.load()
        stored = json.loads(saved.text["assetrag"])
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(result.image))
    assert stored == result.lineage()
    assert stored["prompt"] == result.prompt and "brief" in stored["prompt"]
    assert stored["backend"] == "board" and stored["model"] == "reference-board"
    assert stored["reference_ids"] == ["s1", "w1"]
    assert stored["sections"] == ["blue watch", "style references"]


def test_board_refuses_sizes_and_too_many_references():
    gen = get_generator("board", max_reference_images=3)
    with pytest.raises(GenerationOptionsError, match="does not take an aspect ratio"):
        gen.generate("x", _refs()[:1], GenerationOptions(aspect_ratio="1:1"))
    with pytest.raises(GenerationOptionsError, match="takes at most 3"):
        gen.generate("x", _refs())
    with pytest.raises(GenerationOptionsError, match="use 1 to 1"):
        gen.generate("x", _refs()[:1], replace(GenerationOptions(), n=2))
