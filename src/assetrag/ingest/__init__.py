"""Ingest: scan → read + hash → decode → embed → write, incremental (see `ingest.runner`).

scan.py    walk roots: image files, folder tags, collection, sidecar metadata
known.py   what the store holds vs what is on disk: skip, claims, moves/copies, prune
read.py    read + hash + decode (the workers' stage)
simple.py  the simple pipeline (CPU default)      fast.py  the overlapped pipeline (CUDA default)
stages.py  stage timing, embed with per-image fallback, embed/write threads
rows.py    one file's item, its Milvus row, the report
runner.py  `Ingestor`: wires the stages and times each one
ray_engine.py  `--engine ray`: read, decode, embed as Ray Data operators; the driver keeps the rules
"""

from assetrag.ingest.known import DEFAULT_MAX_DELETE
from assetrag.ingest.ray_engine import RayOptions
from assetrag.ingest.read import MAX_FILE_BYTES, read_regular_file, sha256_bytes
from assetrag.ingest.rows import FileError, IngestReport
from assetrag.ingest.runner import Ingestor, add_file
from assetrag.progress import ProgressSink

__all__ = [
    "DEFAULT_MAX_DELETE",
    "MAX_FILE_BYTES",
    "FileError",
    "IngestReport",
    "Ingestor",
    "ProgressSink",
    "RayOptions",
    "add_file",
    "read_regular_file",
    "sha256_bytes",
]
