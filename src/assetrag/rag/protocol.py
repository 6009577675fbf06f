"""What the RAG loop needs from a library — and nothing more, so `rag` does not depend on `Library` (which
implements this protocol and offers `plan`/`generate` as conveniences): no import circle."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from assetrag.search import Query, SearchHit, Understanding


class AssetSource(Protocol):
    """Search, read and add assets: the part of `assetrag.Library` the RAG loop uses."""

    def understand(self, text: str) -> Understanding: ...

    def query(self, q: Query) -> Sequence[SearchHit]: ...

    def get(self, asset_id: str) -> SearchHit | None: ...

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def embed_image(self, image: str | Path | Image.Image) -> np.ndarray: ...

    def add_image(
        self,
        path: str | os.PathLike[str],
        *,
        collection: str,
        tags: Sequence[str] = (),
        source: str = "ingested",
        lineage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str: ...
