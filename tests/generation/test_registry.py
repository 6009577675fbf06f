"""Generators by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assetrag.generation import GeneratorSetupError, get_generator, list_generators
from assetrag.generation.board import BoardGenerator
from assetrag.generation.diffusers_local import DiffusersGenerator
from assetrag.generation.gemini import GeminiGenerator
from assetrag.generation.openai_images import OpenAIImageGenerator


def test_list_generators():
    assert list_generators() == ["gemini", "openai", "diffusers", "board"]


def test_get_generator_by_name_with_kwargs():
    gen = get_generator("gemini", api_key="k", base_url="http://127.0.0.1:9")
    assert isinstance(gen, GeminiGenerator)
    assert (gen.model, gen.max_reference_images, gen.base_url) == ("gemini-2.5-flash-image", 3, "http://127.0.0.1:9")
    assert isinstance(get_generator("OpenAI"), OpenAIImageGenerator)
    assert isinstance(get_generator("board", max_reference_images=5), BoardGenerator)


def test_name_colon_value_sets_the_model_or_checkpoint(tmp_path):
    pro = get_generator("gemini:gemini-3-pro-image-preview")
    assert pro.model == "gemini-3-pro-image-preview" and pro.max_reference_images == 14
    assert pro.sizes == ("1K", "2K", "4K")
    assert get_generator("openai:gpt-image-1.5").model == "gpt-image-1.5"
    (tmp_path / "model_index.json").write_text("{}")
    diff = get_generator(f"diffusers:{tmp_path}")
    assert isinstance(diff, DiffusersGenerator) and diff.checkpoint == tmp_path


@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("midjourney", {}, "unknown generator 'midjourney'; use one of: gemini, openai, diffusers, board"),
        ("board:big", {}, "takes no ':<value>' suffix"),
        ("gemini:", {}, "empty model"),
        ("gemini:x", {"model": "y"}, "model given twice"),
        ("diffusers", {}, "ASSETRAG_DIFFUSERS_CHECKPOINT"),
        ("diffusers:/nonexistent/ckpt", {}, r"no model_index\.json"),
    ],
)
def test_bad_names_say_what_to_do(name, kwargs, needle, monkeypatch):
    monkeypatch.delenv("ASSETRAG_DIFFUSERS_CHECKPOINT", raising=False)
    with pytest.raises(GeneratorSetupError, match=needle):
        get_generator(name, **kwargs)


def test_importing_the_package_loads_no_vendor_sdk():
    code = (
        "import sys, assetrag.generation as g; g.get_generator('gemini'); g.get_generator('openai'); "
        "print(sorted(m for m in ('google.genai', 'openai', 'diffusers', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
