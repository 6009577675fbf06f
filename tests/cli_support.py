"""The `assetrag` command line run inside the test process: `assetrag.cli.main()` with the arguments, the
environment and the working directory given, stdout and stderr captured, the exit code as a process would
return it.

What a `python -m assetrag.cli` process does minus the interpreter start and the imports (seconds per call on
2 cores), for tests that call the CLI many times; every CLI surface keeps at least one test that runs the
real process (tests/test_cli.py, tests/store/test_store_cli.py, …).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_in_process(
    *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`assetrag <args>` in this process, with exactly `env` (default: this process' own) as its environment."""
    from assetrag import cli

    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["assetrag", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit status 1
        err.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess(["assetrag", *args], code, out.getvalue(), err.getvalue())
