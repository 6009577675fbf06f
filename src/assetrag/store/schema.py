"""The collection schema of an assetrag library (schema version 3) and the facts other modules read.

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

The collection's properties hold the model name and dim it was built with and the schema version
(`PROP_SCHEMA`); `migrations` upgrades an older collection when a `Store` opens it.
"""

from __future__ import annotations

from typing import Any

from pymilvus import CollectionSchema, DataType, MilvusClient

#: the schema version this assetrag writes; older collections are migrated on open (see `migrations`)
SCHEMA_VERSION = 3

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


def build_schema(dim: int) -> CollectionSchema:
    """The collection schema of the current version for `dim`-dimensional vectors."""
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
