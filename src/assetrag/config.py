"""One `Settings` object: every knob of assetrag, read from arguments and the environment."""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from assetrag.errors import ConfigError

__version__ = "0.1.0"
DEFAULT_URI = "./assetrag.db"
DEFAULT_LIBRARY = "assets"
DEFAULT_MODEL = "auto"
DEFAULT_CLIP_CHECKPOINT = "openai/clip-vit-base-patch32"
#: the default `max_delete` of an ingest with prune: a prune may delete at most this share of the library
#: without `force` (`assetrag.ingest.known`)
DEFAULT_MAX_DELETE = "10%"
#: vector index choices (`--index`, ASSETRAG_INDEX); "auto" is the backend's default (HNSW on both today)
INDEX_CHOICES = ("auto", "hnsw", "flat", "ivf_flat", "autoindex")
#: ingest pipelines (`assetrag ingest --pipeline`, ASSETRAG_PIPELINE); "auto" is fast on CUDA, simple elsewhere
PIPELINE_CHOICES = ("auto", "simple", "fast")
#: bulk insert for new rows (`assetrag ingest --bulk`, ASSETRAG_BULK): auto (a server, a staging location and at
#: least `bulk_threshold` files to read) | on | off — see `assetrag.store.bulk`
BULK_CHOICES = ("auto", "on", "off")
DEFAULT_BULK_THRESHOLD = 50_000
#: model runtimes (`--runtime`, ASSETRAG_RUNTIME) and int8 quantisation (`--quantize`, ASSETRAG_QUANTIZE); see
#: `assetrag.embedding.runtime`
RUNTIME_CHOICES = ("auto", "onnx", "torch")
QUANTIZE_CHOICES = ("auto", "none", "int8")
#: seconds one generation request may take before it counts as failed (`assetrag generate --timeout`,
#: ASSETRAG_GENERATION_TIMEOUT, the API's `timeout_s`); a request that times out is not retried
DEFAULT_GENERATION_TIMEOUT_S = 120.0


#: what a Milvus server accepts as a collection name (Milvus Lite accepts more, e.g. '-': a library made there
#: could never move to a server)
LIBRARY_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LIBRARY_NAME_MAX = 255


def is_server_uri(uri: str) -> bool:
    """True when `uri` points at a Milvus server rather than a Milvus Lite directory."""
    return uri.startswith(("http://", "https://", "tcp://", "unix:"))


def check_library_name(name: str) -> None:
    """Refuse a library (Milvus collection) name a Milvus server would refuse, saying what would do."""
    if LIBRARY_NAME_RE.fullmatch(name or "") and len(name) <= LIBRARY_NAME_MAX:
        return
    rule = (
        f"a library name holds only ASCII letters, digits and '_', starts with a letter or '_' and has at most "
        f"{LIBRARY_NAME_MAX} characters (a Milvus server refuses anything else, '-' included)"
    )
    if not name:
        raise ConfigError(f"the library name is empty: {rule}; e.g. {DEFAULT_LIBRARY!r}")
    if len(name) > LIBRARY_NAME_MAX:
        raise ConfigError(f"library name {name[:40]!r}… is {len(name)} characters long: {rule}")
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # été → ete
    suggestion = re.sub(r"\W", "_", plain or name, flags=re.ASCII)
    if not re.match(r"[A-Za-z_]", suggestion):
        suggestion = "_" + suggestion
    raise ConfigError(f"library name {name!r} is not allowed: {rule}; use e.g. {suggestion!r} instead")


_N = TypeVar("_N", int, float)


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer; set it to a whole number")


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number; set it to e.g. 30 or 2.5,")


def _env_number(name: str, default: _N, kind: Callable[[str], _N], what: str) -> _N:
    """`kind(os.environ[name])`, `default` when unset or empty; a ConfigError naming the variable otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not {what} or unset it") from exc


@dataclass(frozen=True)
class Settings:
    """Where the library lives, which model embeds it and how hard to work.

    `uri`: a file path → Milvus Lite (embedded), `http(s)://host:port` → a Milvus server.
    `model`: `auto` (CLIP when its weights load, else the offline model), `offline`, `clip`,
    `clip:<checkpoint dir or hub id>`, or a checkpoint directory / hub id directly.
    """

    uri: str = DEFAULT_URI
    library: str = DEFAULT_LIBRARY
    model: str = DEFAULT_MODEL
    device: str = "auto"
    batch_size: int = 32
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    torch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    token: str | None = field(default=None, repr=False)  # never printed
    db_name: str | None = None
    index: str = "auto"  # the vector index a new library gets, and what `assetrag index` builds
    #: ingest pipeline: auto (fast on CUDA, else simple) | simple | fast — see `assetrag.ingest`
    pipeline: str = "auto"
    #: model runtime: auto (ONNX Runtime on a CPU, torch on CUDA) | onnx | torch
    runtime: str = "auto"
    #: int8 transformer towers on ONNX Runtime: auto (where measured harmless) | none | int8
    quantize: str = "auto"
    #: bulk insert of new rows: auto | on | off; where files are staged (a directory the Milvus server reads, or
    #: s3://its-bucket/prefix); the server's name for that place when it differs; files to read for auto
    bulk: str = "auto"
    bulk_stage: str | None = None
    bulk_server_path: str | None = None
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    #: seconds one generation request may take (the default of `assetrag generate --timeout` and of the API's
    #: `timeout_s`); a timed-out request is not retried
    generation_timeout_s: float = DEFAULT_GENERATION_TIMEOUT_S
    #: where each setting came from: "flag", "env ASSETRAG_…", "<file> [profile.x]" or "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(
        cls, *, config: str | os.PathLike[str] | None = None, profile: str | None = None, **flags: object
    ) -> Settings:
        """Settings as the CLI reads them: flags > `ASSETRAG_*` environment > config file > defaults.

        The file is `config`, else `./assetrag.toml` over `~/.config/assetrag/assetrag.toml` (both optional);
        its top-level keys apply always and `[profile.NAME]` tables when `profile` (or `ASSETRAG_PROFILE`) names
        them. Secrets (the Milvus token) come from the environment only. `sources` says where each came from.
        """
        values, sources = read_config_files(config, profile or os.environ.get("ASSETRAG_PROFILE") or None)
        for name, env in ENV_VARS.items():
            if os.environ.get(env):
                values.pop(name, None)
                sources[name] = f"env {env}"
        for name, value in flags.items():
            if value is not None:
                sources[name] = "flag"
        base = cls.from_env(**{**values, **{k: v for k, v in flags.items() if v is not None}})
        return replace(base, sources={f: sources.get(f, "default") for f in ENV_VARS})

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from `ASSETRAG_*` environment variables, then explicit non-None overrides."""
        base = cls(
            uri=os.environ.get("ASSETRAG_URI", DEFAULT_URI),
            library=os.environ.get("ASSETRAG_LIBRARY", DEFAULT_LIBRARY),
            model=os.environ.get("ASSETRAG_MODEL", DEFAULT_MODEL),
            device=os.environ.get("ASSETRAG_DEVICE", "auto"),
            batch_size=_env_int("ASSETRAG_BATCH_SIZE", 32),
            workers=_env_int("ASSETRAG_WORKERS", min(4, os.cpu_count() or 1)),
            torch_threads=_env_int("ASSETRAG_TORCH_THREADS", os.cpu_count() or 1),
            token=os.environ.get("ASSETRAG_MILVUS_TOKEN") or None,
            db_name=os.environ.get("ASSETRAG_MILVUS_DB") or None,
            index=os.environ.get("ASSETRAG_INDEX") or "auto",
            pipeline=os.environ.get("ASSETRAG_PIPELINE") or "auto",
            runtime=os.environ.get("ASSETRAG_RUNTIME") or "auto",
            quantize=os.environ.get("ASSETRAG_QUANTIZE") or "auto",
            bulk=os.environ.get("ASSETRAG_BULK") or "auto",
            bulk_stage=os.environ.get("ASSETRAG_BULK_STAGE") or None,
            bulk_server_path=os.environ.get("ASSETRAG_BULK_SERVER_PATH") or None,
            bulk_threshold=_env_int("ASSETRAG_BULK_THRESHOLD", DEFAULT_BULK_THRESHOLD),
            generation_timeout_s=_env_float("ASSETRAG_GENERATION_TIMEOUT", DEFAULT_GENERATION_TIMEOUT_S),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(base, **clean)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be ≥ 1, got {self.batch_size}")
        if self.workers < 1:
            raise ConfigError(f"workers must be ≥ 1, got {self.workers}")
        if self.index.lower().replace("-", "_") not in INDEX_CHOICES:
            raise ConfigError(f"unknown index {self.index!r}; choose one of {', '.join(INDEX_CHOICES)}")
        if self.pipeline not in PIPELINE_CHOICES:
            raise ConfigError(f"unknown ingest pipeline {self.pipeline!r}; choose one of {', '.join(PIPELINE_CHOICES)}")
        if self.runtime not in RUNTIME_CHOICES:
            raise ConfigError(
                f"unknown runtime {self.runtime!r} (--runtime / ASSETRAG_RUNTIME); choose one of "
                f"{', '.join(RUNTIME_CHOICES)}"
            )
        if self.quantize not in QUANTIZE_CHOICES:
            raise ConfigError(
                f"unknown quantize {self.quantize!r} (--quantize / ASSETRAG_QUANTIZE); choose one of "
                f"{', '.join(QUANTIZE_CHOICES)}"
            )
        if self.bulk not in BULK_CHOICES:
            raise ConfigError(
                f"unknown bulk {self.bulk!r} (--bulk / ASSETRAG_BULK); choose one of {', '.join(BULK_CHOICES)}"
            )
        if self.bulk_threshold < 1:
            raise ConfigError(f"bulk threshold must be ≥ 1, got {self.bulk_threshold}")
        if not (0 < self.generation_timeout_s < math.inf):  # also refuses NaN
            raise ConfigError(
                f"generation timeout must be a number of seconds > 0 (ASSETRAG_GENERATION_TIMEOUT, "
                f"generation_timeout_s in {CONFIG_NAME}, or --timeout), got {self.generation_timeout_s}"
            )
        check_library_name(self.library)

    @property
    def is_server(self) -> bool:
        """True when `uri` points at a Milvus server rather than a Milvus Lite directory."""
        return is_server_uri(self.uri)

    @property
    def cache_dir(self) -> Path:
        """Where assetrag caches derived data (class-name embeddings, thumbnails)."""
        root = os.environ.get("ASSETRAG_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "assetrag"
        )
        return Path(root)


#: each setting's environment variable (the config file uses the setting's own name as its key)
ENV_VARS = {
    "uri": "ASSETRAG_URI",
    "library": "ASSETRAG_LIBRARY",
    "model": "ASSETRAG_MODEL",
    "device": "ASSETRAG_DEVICE",
    "batch_size": "ASSETRAG_BATCH_SIZE",
    "workers": "ASSETRAG_WORKERS",
    "torch_threads": "ASSETRAG_TORCH_THREADS",
    "token": "ASSETRAG_MILVUS_TOKEN",
    "db_name": "ASSETRAG_MILVUS_DB",
    "index": "ASSETRAG_INDEX",
    "pipeline": "ASSETRAG_PIPELINE",
    "runtime": "ASSETRAG_RUNTIME",
    "quantize": "ASSETRAG_QUANTIZE",
    "bulk": "ASSETRAG_BULK",
    "bulk_stage": "ASSETRAG_BULK_STAGE",
    "bulk_server_path": "ASSETRAG_BULK_SERVER_PATH",
    "bulk_threshold": "ASSETRAG_BULK_THRESHOLD",
    "generation_timeout_s": "ASSETRAG_GENERATION_TIMEOUT",
}
#: settings a file may not hold (secrets come from the environment only)
SECRETS = frozenset({"token"})
CONFIG_NAME = "assetrag.toml"
_INTS = frozenset({"batch_size", "workers", "torch_threads", "bulk_threshold"})
_NUMBERS = frozenset({"generation_timeout_s"})  # an int or a float


def config_files(config: str | os.PathLike[str] | None = None) -> list[Path]:
    """The config files read, lowest precedence first: `config` alone when given (it must exist), else the
    user's (`$XDG_CONFIG_HOME/assetrag/assetrag.toml`) then the project's (`./assetrag.toml`), where present."""
    if config is not None:
        path = Path(config).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (--config)")
        return [path]
    user = Path(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")) / "assetrag" / CONFIG_NAME
    return [p for p in (user, Path.cwd() / CONFIG_NAME) if p.is_file()]


def read_config_files(
    config: str | os.PathLike[str] | None = None, profile: str | None = None
) -> tuple[dict[str, object], dict[str, str]]:
    """(values, where each came from) from the config files and the chosen profile; raises `ConfigError`
    naming the file and key for an unknown key, a wrong type, a secret, or a profile no file has."""
    import tomllib

    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    profiles_seen: set[str] = set()
    found_profile = profile is None
    for path in config_files(config):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}; fix it or pass --config") from exc
        tables = data.pop("profile", {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{path}: 'profile' must be a table of [profile.NAME] tables")
        profiles_seen.update(tables)
        layers = [(data, str(path))]
        if profile is not None and profile in tables:
            found_profile = True
            layers.append((tables[profile], f"{path} [profile.{profile}]"))
        for table, where in layers:
            for key, value in table.items():
                _check_key(key, value, where)
                values[key] = value
                sources[key] = where
    if not found_profile:
        known = ", ".join(sorted(profiles_seen)) or "none"
        raise ConfigError(f"no profile {profile!r} in the config files (profiles found: {known})")
    return values, sources


def _check_key(key: str, value: object, where: str) -> None:
    if key in SECRETS:
        raise ConfigError(
            f"{where}: {key!r} is a secret and is read from the environment only: set {ENV_VARS[key]} instead"
        )
    if key not in ENV_VARS:
        known = ", ".join(k for k in ENV_VARS if k not in SECRETS)
        raise ConfigError(f"{where}: unknown setting {key!r}; known: {known}")
    if key in _INTS and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be a whole number, got {value!r}")
    if key in _NUMBERS and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if key not in _INTS | _NUMBERS and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
