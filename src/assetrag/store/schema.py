"""The collection schema of an assetrag library (schema version 4) and the facts other modules read.

One library = one Milvus collection. Its fields:

- `id` VARCHAR(64), primary key: sha256 of the file's bytes (byte-identical copies are one asset).
- `vector` FLOAT_VECTOR(dim): the normalised image embedding (cosine index).
- `path` (first path seen), `paths` / `mtimes` (up to `MAX_PATHS` copies and their mtimes, ns), `filename`,
  `size` (bytes), `mtime` (ns), `width`, `height` (pixels).
- `tags` ARRAY<VARCHAR> (≤ `MAX_TAGS` of ≤ `MAX_TAG` chars), `collection`, `source` ("ingested",
  "generated", …), `lineage` JSON (what a generated image was grounded on), `metadata` JSON (sidecar data).
- schema 2 adds, for near-duplicates and video keyframes:
  - `phash` VARCHAR(16): the 64-bit perceptual hash as 16 lowercase hex digits; "" when not computed.
  - `media` VARCHAR(16): "image" (a still) or "video_frame" (a keyframe of a video).
  - `time` FLOAT: seconds into the video for a keyframe; -1.0 for a still (0.0 is a video's first frame).
- schema 3 adds, to group a video's keyframes (one row per keyframe, `ingest.video`):
  - `video_id` VARCHAR(64): the sha256 of the video file's bytes on each of its keyframes; "" for a still.
    A keyframe's own `id` is sha256 of `"<video_id>@<milliseconds>"` (`ingest.video.keyframe_id`).
  - `frames` INT64: how many keyframes the video has, on each of them (0 for a still): a video counts as
    stored only when that many rows carry its `video_id` (a run killed mid-write is detected and redone).
- schema 4 adds, for lexical search inside Milvus:
  - `text` VARCHAR(65535): the asset's words (`assetrag.words.document_text`: file names, tags, collection,
    sidecar captions, a generated image's brief — the terms the in-process BM25 counts, space-separated),
    derived from the row on every write (`with_text`; never read back as a scalar field).
  - where the backend has full-text search (Milvus Lite 3.x, a Milvus server ≥ 2.5: `supports_fulltext`),
    `text` is analysed (standard tokenizer, which splits it back into exactly those terms) and a BM25 `Function`
    fills `text_sparse` SPARSE_FLOAT_VECTOR (index SPARSE_INVERTED_INDEX, metric BM25, k1 1.2, b 0.75 as in
    `search.lexical`). On an older server (the 2.3.5 of the tests) schema 4 is the same minus the analyser, the
    sparse field and the function: search keeps its in-process BM25 there (`has_fulltext` tells which).

The collection's properties hold the model name and dim it was built with and the schema version
(`PROP_SCHEMA`); `migrations` upgrades an older collection when a `Store` opens it.
"""

from __future__ import annotations

import re
from typing import Any

from pymilvus import CollectionSchema, DataType, Function, FunctionType, MilvusClient

from assetrag.words import document_text

#: the schema version this assetrag writes; older collections are migrated on open (see `migrations`)
SCHEMA_VERSION = 4

MAX_PATH = 4096
MAX_PATHS = 64  # byte-identical copies one asset remembers
MAX_TAGS = 64
MAX_TAG = 256
MAX_FILENAME = 1024
MAX_COLLECTION = 256
MAX_SOURCE = 32
PHASH_LENGTH = 16  # hex digits of a 64-bit hash
MAX_MEDIA = 16
CONTENT_ID_LENGTH = 64  # sha256 hex: `id`, `video_id`
MAX_TEXT = 65535  # Milvus' VARCHAR limit (`words.MAX_TEXT_BYTES` cuts the text to it)

#: schema 4's lexical fields: the words, their BM25 sparse vector (full-text backends), the function between
TEXT_FIELD = "text"
SPARSE_FIELD = "text_sparse"
BM25_FUNCTION = "text_bm25"
#: the analyser of `text`: its terms are already split, lower-cased and stemmed; "standard" splits on the spaces
TEXT_ANALYZER = {"tokenizer": "standard"}
#: BM25 parameters of the sparse index, and of the in-process index (`search.lexical`)
BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}
#: the first Milvus server version with full-text search (BM25 functions)
FULLTEXT_SERVER = (2, 5)

MEDIA_IMAGE = "image"
MEDIA_VIDEO_FRAME = "video_frame"
#: `time` of a still image
NO_TIME = -1.0

#: collection properties
PROP_MODEL = "assetrag.model"
PROP_DIM = "assetrag.dim"
PROP_SCHEMA = "assetrag.schema"

#: every scalar field, in schema order (the vector is fetched only on request)
SCALAR_FIELDS = (
    "id",
    "path",
    "paths",
    "mtimes",
    "filename",
    "size",
    "mtime",
    "width",
    "height",
    "tags",
    "collection",
    "source",
    "lineage",
    "metadata",
    "phash",
    "media",
    "time",
    "video_id",
    "frames",
)
#: every field, vector included (what a copy or an export reads)
ALL_FIELDS = (*SCALAR_FIELDS, "vector")

#: values for fields a row builder may leave out (fields added after schema 1)
DEFAULTS: dict[str, Any] = {"phash": "", "media": MEDIA_IMAGE, "time": NO_TIME, "video_id": "", "frames": 0}


def with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with `DEFAULTS` for the fields it lacks (the same dict when it lacks none)."""
    missing = [k for k in DEFAULTS if k not in row]
    if not missing:
        return row
    return {**row, **{k: DEFAULTS[k] for k in missing}}


def with_text(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with its `text` (schema 4) derived from its other fields: what every write to a schema 4 library
    sends (a `text` the row carries is replaced: it is never a source of truth)."""
    return {**row, TEXT_FIELD: document_text(row)}


def supports_fulltext(client: MilvusClient) -> bool:
    """Whether the backend behind `client` has full-text search: Milvus Lite 3.x ("milvus_lite-3.2.2") and
    servers from 2.5 ("v2.5.4"); not the 2.3.5 server ("v2.3.5-lite") nor a version it cannot read."""
    try:
        version = str(client.get_server_version())
    except Exception:  # an old server or proxy without the call: assume the older feature set
        return False
    found = re.search(r"(\d+)\.(\d+)", version)
    if not found:
        return False
    major, minor = int(found.group(1)), int(found.group(2))
    if version.startswith("milvus_lite"):
        return major >= 3
    return (major, minor) >= FULLTEXT_SERVER


def has_fulltext(description: dict[str, Any]) -> bool:
    """Whether a collection (its `describe_collection`) has the BM25 function into `SPARSE_FIELD`."""
    return any(SPARSE_FIELD in (f.get("output_field_names") or []) for f in description.get("functions") or [])


def build_schema(dim: int, fulltext: bool = True) -> CollectionSchema:
    """The collection schema of the current version for `dim`-dimensional vectors; `fulltext`: with the
    analysed `text`, `text_sparse` and the BM25 function (a backend with full-text search, `supports_fulltext`)."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field(
        "paths", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_PATHS, max_length=MAX_PATH
    )
    schema.add_field("mtimes", DataType.ARRAY, element_type=DataType.INT64, max_capacity=MAX_PATHS)
    schema.add_field("filename", DataType.VARCHAR, max_length=MAX_FILENAME)
    for name in ("size", "mtime", "width", "height"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS, max_length=MAX_TAG)
    schema.add_field("collection", DataType.VARCHAR, max_length=MAX_COLLECTION)
    schema.add_field("source", DataType.VARCHAR, max_length=MAX_SOURCE)
    schema.add_field("lineage", DataType.JSON)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("phash", DataType.VARCHAR, max_length=PHASH_LENGTH)
    schema.add_field("media", DataType.VARCHAR, max_length=MAX_MEDIA)
    schema.add_field("time", DataType.FLOAT)
    schema.add_field("video_id", DataType.VARCHAR, max_length=CONTENT_ID_LENGTH)
    schema.add_field("frames", DataType.INT64)
    if not fulltext:
        schema.add_field(TEXT_FIELD, DataType.VARCHAR, max_length=MAX_TEXT)
        return schema
    schema.add_field(
        TEXT_FIELD, DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True, analyzer_params=TEXT_ANALYZER
    )
    schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name=BM25_FUNCTION,
            function_type=FunctionType.BM25,
            input_field_names=[TEXT_FIELD],
            output_field_names=[SPARSE_FIELD],
        )
    )
    return schema


def properties(model: str, dim: int, version: int = SCHEMA_VERSION) -> dict[str, str]:
    """The collection properties of a library built with `model`/`dim`."""
    return {PROP_MODEL: model, PROP_DIM: str(dim), PROP_SCHEMA: str(version)}


def schema_version(props: dict[str, str]) -> int:
    """The schema version in a collection's properties (1 when absent: schema 1 predates nothing; a value
    that is not a number counts as newer than any this version knows)."""
    stored = props.get(PROP_SCHEMA, "1")
    try:
        return int(stored)
    except ValueError:
        return 1 << 30
