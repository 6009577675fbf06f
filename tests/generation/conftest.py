"""Fixtures for the generation backends: reference images, the fake vendor servers, fast options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)  # tests/ → `import fakes`

from assetrag.generation import GenerationOptions, Reference  # noqa: E402
from fakes.gemini_server import FakeGemini  # noqa: E402
from fakes.images import make_image  # noqa: E402
from fakes.openai_server import FakeOpenAI  # noqa: E402

KEY_VARS = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ASSETRAG_GEMINI_BASE_URL",
    "ASSETRAG_OPENAI_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GEMINI_BASE_URL",
)


@pytest.fixture(autouse=True)
def _no_vendor_env(monkeypatch):
    """No test sees a real key or endpoint from the machine's environment."""
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def refs() -> list[Reference]:
    labels = ["blue watch", "diamond necklace", "style"]
    return [
        Reference(id=f"sha-{i}", image=make_image(i), path=f"/lib/asset-{i}.png", label=label, score=0.9 - i / 10)
        for i, label in enumerate(labels)
    ]


@pytest.fixture
def fast() -> GenerationOptions:
    """Options with tiny waits so retry tests take milliseconds."""
    return GenerationOptions(timeout_s=5, max_retries=2, retry_backoff_s=0.01, max_retry_wait_s=2)


@pytest.fixture
def gemini_server():
    with FakeGemini() as server:
        yield server


@pytest.fixture
def openai_server():
    with FakeOpenAI() as server:
        yield server
