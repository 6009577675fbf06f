"""CI's entry point (`.ci/run`) turns the skips that would hide a missing system package into failures: the
browser tests' (no Chromium) and the French tests' (no FreeDict). Checked here, outside those modules, whose
own fixtures skip them when the package is missing — a `.ci/run` that lost the variable would skip its test."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _required_by(test_file: str, constant: str) -> str:
    """The variable name a test module reads (its `constant = "..."` line)."""
    found = re.search(rf'^{constant} = "([A-Z_]+)"$', (REPO / "tests" / test_file).read_text(), re.M)
    assert found, f"{test_file} no longer defines {constant}"
    return found.group(1)


@pytest.mark.parametrize(
    ("test_file", "constant"),
    [("server/test_browser.py", "REQUIRE_BROWSER_ENV"), ("embedding/test_french.py", "REQUIRE_ENV")],
)
def test_ci_run_sets_each_require_variable_before_the_tests(test_file, constant):
    name = _required_by(test_file, constant)
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    exports = [i for i, line in enumerate(lines) if line.startswith("export ") and f"{name}=1" in shlex.split(line)]
    tests = [i for i, line in enumerate(lines) if line == "make test" or line.startswith("make test ")]
    assert exports and tests and exports[0] < tests[0], f".ci/run must export {name}=1 before `make test`"
