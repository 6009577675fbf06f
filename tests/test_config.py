"""Settings from flags, the environment and assetrag.toml (with profiles), and global options after the verb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assetrag.cli import hoist_global_options
from assetrag.config import Settings
from assetrag.errors import ConfigError
from cli_support import run_in_process

TOML = """
library = "base_lib"
model = "offline"
batch_size = 8

[profile.prod]
uri = "http://milvus.internal:19530"
library = "lunar"
db_name = "brand"
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in ("ASSETRAG_URI", "ASSETRAG_LIBRARY", "ASSETRAG_MODEL", "ASSETRAG_PROFILE", "ASSETRAG_BATCH_SIZE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "assetrag.toml").write_text(TOML)
    return tmp_path


def test_flags_beat_env_beat_file_beat_defaults(project, monkeypatch):
    s = Settings.load()
    assert (s.library, s.model, s.batch_size, s.uri) == ("base_lib", "offline", 8, "./assetrag.db")
    assert s.sources["library"].endswith("assetrag.toml") and s.sources["uri"] == "default"
    monkeypatch.setenv("ASSETRAG_LIBRARY", "from_env")
    s = Settings.load()
    assert s.library == "from_env" and s.sources["library"] == "env ASSETRAG_LIBRARY"
    s = Settings.load(library="from_flag")
    assert s.library == "from_flag" and s.sources["library"] == "flag"


def test_a_profile_overrides_the_top_level(project, monkeypatch):
    s = Settings.load(profile="prod")
    assert (s.uri, s.library, s.db_name, s.model) == ("http://milvus.internal:19530", "lunar", "brand", "offline")
    assert s.sources["uri"].endswith("[profile.prod]") and s.sources["model"].endswith("assetrag.toml")
    monkeypatch.setenv("ASSETRAG_PROFILE", "prod")
    assert Settings.load().library == "lunar"
    with pytest.raises(ConfigError, match=r"no profile 'staging'.*prod"):
        Settings.load(profile="staging")


def test_the_project_file_overrides_the_users(project):
    user = project / "xdg" / "assetrag"
    user.mkdir(parents=True)
    (user / "assetrag.toml").write_text('library = "user_lib"\nindex = "flat"\n')
    s = Settings.load()
    assert s.library == "base_lib" and s.index == "flat" and s.sources["index"] == str(user / "assetrag.toml")
    only = project / "other.toml"
    only.write_text('library = "explicit"\n')
    assert Settings.load(config=only).index == "auto"  # --config replaces both files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('token = "root:Milvus"\n', "secret.*ASSETRAG_MILVUS_TOKEN"),
        ('colour = "red"\n', "unknown setting 'colour'"),
        ('batch_size = "big"\n', "batch_size must be a whole number"),
        ('generation_timeout_s = "slow"\n', "generation_timeout_s must be a number"),
        ("generation_timeout_s = 0\n", "generation timeout must be a number of seconds > 0.*got 0"),
        ("library = [\n", "cannot read config file"),
        ('library = "bad name!"\n', "library"),
    ],
)
def test_bad_files_say_what_to_fix(project, text, message):
    (project / "assetrag.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        Settings.load()


def test_the_generation_timeout_comes_from_the_file_the_env_or_the_default(project, monkeypatch):
    monkeypatch.delenv("ASSETRAG_GENERATION_TIMEOUT", raising=False)
    s = Settings.load()
    assert s.generation_timeout_s == 120 and s.sources["generation_timeout_s"] == "default"
    (project / "assetrag.toml").write_text("generation_timeout_s = 45\n")
    s = Settings.load()
    assert s.generation_timeout_s == 45 and s.sources["generation_timeout_s"].endswith("assetrag.toml")
    monkeypatch.setenv("ASSETRAG_GENERATION_TIMEOUT", "2.5")
    s = Settings.load()
    assert s.generation_timeout_s == 2.5 and s.sources["generation_timeout_s"] == "env ASSETRAG_GENERATION_TIMEOUT"
    for bad, words in (("soon", "'soon' is not a number"), ("0", "> 0"), ("-3", "> 0"), ("nan", "> 0")):
        monkeypatch.setenv("ASSETRAG_GENERATION_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="ASSETRAG_GENERATION_TIMEOUT") as info:
            Settings.load()
        assert words in str(info.value)


def test_a_missing_config_file_is_refused(project):
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(config=project / "nope.toml")


def test_global_options_may_follow_the_command():
    assert hoist_global_options(["ingest", "--uri", "x.db", "photos/"]) == ["--uri", "x.db", "ingest", "photos/"]
    assert hoist_global_options(["search", "cat", "--model=offline", "-k", "3"]) == [
        "--model=offline",
        "search",
        "cat",
        "-k",
        "3",
    ]
    # a command's own option of the same name stays with the command; words after "--" are left alone
    assert hoist_global_options(["index", "hnsw", "--index", "flat"]) == ["--index", "flat", "index", "hnsw"]
    assert hoist_global_options(["search", "a", "--", "--uri"]) == ["search", "a", "--", "--uri"]
    assert hoist_global_options(["--help"]) == ["--help"]


def test_the_command_line_reads_options_after_the_verb_and_the_doctor_says_where_settings_came_from(project, photo_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETRAG_")}
    env |= {"ASSETRAG_TORCH_THREADS": "2", "XDG_CONFIG_HOME": str(project / "xdg")}
    (project / "assetrag.toml").write_text('library = "from_file"\ngeneration_timeout_s = 45\n')
    db = project / "after.db"
    cli = [sys.executable, "-m", "assetrag.cli"]
    done = subprocess.run(
        [*cli, "ingest", "--uri", str(db), str(photo_dir), "--no-progress"],
        capture_output=True, text=True, env=env, cwd=project, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "added 5" in done.stdout
    # the same command line in this process (the process start is the ingest's above)
    stats = run_in_process("stats", "--json", "--uri", str(db), env=env, cwd=project)
    assert '"library": "from_file"' in stats.stdout and '"count": 5' in stats.stdout
    doctor = run_in_process("doctor", "--uri", str(db), env=env, cwd=project)
    line = next(x for x in doctor.stdout.splitlines() if "settings" in x)
    assert f"uri={db} (flag)" in line and f"library=from_file ({Path(project) / 'assetrag.toml'})" in line
    assert f"generation_timeout_s=45 ({Path(project) / 'assetrag.toml'})" in line
