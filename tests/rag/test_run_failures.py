"""Generation failures through the whole loop: `rag.run`, and the CLI's exit code (the API job is in
tests/server/test_api.py). The fake Gemini server answers each failure at the protocol level; a failed run
leaves no output file and stores nothing back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace

import pytest
from PIL import Image

from assetrag import rag
from assetrag.generation import (
    GenerationAuthError,
    GenerationBlocked,
    GenerationOptions,
    GenerationRateLimited,
    GenerationUnavailable,
)
from cli_support import run_in_process
from fakes.gemini_server import DEFAULT_KEY, FakeGemini

FAST = GenerationOptions(timeout_s=5, max_retries=2, retry_backoff_s=0.01, max_retry_wait_s=2)

#: name → (how the fake answers, the key sent, options, the error, words its message holds, requests sent)
FAILURES = {
    "safety block": (
        lambda f: f.script(f.finish("IMAGE_SAFETY")),
        DEFAULT_KEY,
        FAST,
        GenerationBlocked,
        "IMAGE_SAFETY",
        1,
    ),
    "prompt blocked": (
        lambda f: f.script(f.prompt_blocked("PROHIBITED_CONTENT")),
        DEFAULT_KEY,
        FAST,
        GenerationBlocked,
        "blocked the prompt",
        1,
    ),
    "429": (
        lambda f: f.always(f.rate_limited("0.02s")),
        DEFAULT_KEY,
        FAST,
        GenerationRateLimited,
        "gave up after 3 attempt(s)",
        3,
    ),
    "5xx": (lambda f: f.always(f.server_error(500)), DEFAULT_KEY, FAST, GenerationUnavailable, "500", 3),
    "timeout": (
        lambda f: f.script(f.slow(3.0)),
        DEFAULT_KEY,
        replace(FAST, timeout_s=0.3),
        GenerationUnavailable,
        "timed out: no answer within timeout_s=0.3",
        1,
    ),
    "bad key": (lambda f: None, "wrong-key", FAST, GenerationAuthError, "API key not valid", 1),
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory, photo_arrays, offline_embedder):
    """The photo library on Milvus Lite, ingested once: a failed run must leave it as it was."""
    from assetrag import Library

    tmp = tmp_path_factory.mktemp("run-failures")
    root = tmp / "library"
    for name, folder in {"cat": "animals", "rocket": "things", "coffee": "things"}.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_arrays[name]).save(root / folder / f"{name}.jpg", quality=90)
    lib = Library(str(tmp / "lib.db"), embedder=offline_embedder)
    assert lib.ingest(root).added == 3
    yield lib
    lib.close()


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_generation_failure_through_rag_run_leaves_nothing_behind(lib, tmp_path, failure):
    answer, key, options, error, words, requests = FAILURES[failure]
    out = tmp_path / "out" / "gen.png"
    with FakeGemini() as fake:
        opts = {"api_key": key, "base_url": fake.base_url}
        plan = rag.plan(lib, "a cat next to a rocket", backend="gemini", generator_options=opts)
        assert plan.chosen
        answer(fake)
        with pytest.raises(error, match=re.escape(words)) as info:
            rag.run(lib, plan, options=options, out=out, generator_options=opts)
        assert len(fake.requests) == requests
    assert info.value.backend == "gemini"
    assert not out.exists() and not out.parent.exists()  # nothing half-written
    assert lib.stats()["count"] == 3  # nothing stored back
    assert lib.search("a cat", k=10, where='source == "synthetic"') == []


def _cli_env(uri: str, fake: FakeGemini, key: str, **more: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ASSETRAG_URI": uri,
        "ASSETRAG_MODEL": "offline:v1",
        "ASSETRAG_TORCH_THREADS": "2",
        "GEMINI_API_KEY": key,
        "ASSETRAG_GEMINI_BASE_URL": fake.base_url,
        **more,
    }
    env.pop("GOOGLE_API_KEY", None)
    return env


def _cli_generate(uri: str, fake: FakeGemini, key: str, out: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "assetrag.cli", "generate", "a cat", "--backend", "gemini", "-o", out]
    return subprocess.run(cmd, capture_output=True, text=True, env=_cli_env(uri, fake, key), timeout=300)


def _cli_generate_in_process(
    uri: str, fake: FakeGemini, out: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """The same command in this process (no interpreter start): for the cases a real process adds nothing to
    (`GEMINI_API_KEY` may come in `env`)."""
    cli = ("generate", "a cat", "--backend", "gemini", "-o", out, *args)
    key = env.pop("GEMINI_API_KEY", DEFAULT_KEY)
    return run_in_process(*cli, env=_cli_env(uri, fake, key, **env))


def test_cli_generate_failures_exit_2_with_the_reason(make_library, photo_dir, tmp_path):
    lib = make_library(uri=tmp_path / "cli.db")
    lib.ingest(photo_dir)
    uri = lib.settings.uri
    lib.close()  # Milvus Lite: one process at a time
    out = tmp_path / "cli-out.png"
    with FakeGemini() as fake:
        fake.script(fake.finish("IMAGE_SAFETY"))
        blocked = _cli_generate(uri, fake, DEFAULT_KEY, str(out))  # one real process: its exit status and stderr
        bad_key = _cli_generate_in_process(uri, fake, str(out), GEMINI_API_KEY="wrong-key")
        assert len(fake.requests) == 2
        fake.always(fake.rate_limited("0.02s"))  # 429 on every attempt: the default retries wait 1 + 2 + 4 s
        limited = _cli_generate_in_process(uri, fake, str(out))
        assert len(fake.requests) == 2 + 4
        fake.always(None)
        # a vendor slower than the timeout: the setting's (ASSETRAG_GENERATION_TIMEOUT), then --timeout over it;
        # a timed-out request is not retried
        fake.script(fake.slow(4.0), fake.slow(4.0))
        slow_env = _cli_generate_in_process(uri, fake, str(out), ASSETRAG_GENERATION_TIMEOUT="1.5")
        slow_flag = _cli_generate_in_process(uri, fake, str(out), "--timeout", "1", ASSETRAG_GENERATION_TIMEOUT="600")
        assert len(fake.requests) == 2 + 4 + 2
        bad_flag = _cli_generate_in_process(uri, fake, str(out), "--timeout", "0")
        assert len(fake.requests) == 2 + 4 + 2
        assert not out.exists()  # no failure wrote anything
        fake.script(fake.image())  # and the same command succeeds once the API does
        ok = _cli_generate_in_process(uri, fake, str(out))
    for res, words in (
        (blocked, "IMAGE_SAFETY"),
        (bad_key, "API key not valid"),
        (limited, "gave up after 4"),
        (slow_env, "Gemini timed out: no answer within timeout_s=1.5 s"),
        (slow_flag, "Gemini timed out: no answer within timeout_s=1 s"),
    ):
        assert res.returncode == 2, res.stdout + res.stderr
        assert "error:" in res.stderr and words in res.stderr and "Traceback" not in res.stderr
        assert "wrong-key" not in res.stderr + res.stdout
    assert bad_flag.returncode == 2 and "--timeout takes a number of seconds > 0" in bad_flag.stderr
    assert ok.returncode == 0, ok.stderr
    assert out.is_file() and "stored as" in ok.stdout
