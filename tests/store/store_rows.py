"""Rows with every field of the current schema, and a check that a store holds exactly them (shared by the
migration, transfer and archive tests)."""

from __future__ import annotations

import numpy as np
import pytest

from assetrag.store import Store
from assetrag.store import schema as S

DIM = 16


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """Rows of the current schema with varied values (vectors random float32, JSON nested, unicode)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        v = rng.standard_normal(DIM).astype(np.float32)
        rows.append(
            {
                "id": f"{i:064x}",
                "vector": (v / np.linalg.norm(v)).tolist(),
                "path": f"/lib/été/{i}.jpg",
                "paths": [f"/lib/été/{i}.jpg", f"/copy/{i}.jpg"][: 1 + i % 2],
                "mtimes": [1_700_000_000_000_000_000 + i, 5][: 1 + i % 2],
                "filename": f"{i}.jpg",
                "size": 1000 + i,
                "mtime": 1_700_000_000_000_000_000 + i,
                "width": 640 + i % 7,
                "height": 480,
                "tags": [f"t{i % 5}", "红"][: 1 + i % 2],
                "collection": f"c{i % 3}",
                "source": "generated" if i % 10 == 0 else "ingested",
                "lineage": {"references": [f"{i + 1:064x}"], "prompt": 'a "quoted" prompt'} if i % 10 == 0 else {},
                "metadata": {"n": i, "nested": {"x": [1, 2.5, None]}},
                "phash": f"{i:016x}",
                "media": "video_frame" if i % 4 == 0 else "image",
                "time": 1.5 * (i % 4) if i % 4 == 0 else -1.0,
                "video_id": f"{i // 8:064x}" if i % 4 == 0 else "",
                "frames": 2 if i % 4 == 0 else 0,
            }
        )
    return rows


def assert_holds(store: Store, expected: list[dict]) -> None:
    got = {r["id"]: r for r in store.iterate(S.ALL_FIELDS, batch_size=700)}
    assert len(got) == len(expected) == store.count()
    for want in expected:
        row = got[want["id"]]
        assert np.array_equal(np.asarray(row["vector"], np.float32), np.asarray(want["vector"], np.float32))
        for key in S.SCALAR_FIELDS:
            value = row[key]
            if key == "time":
                assert value == pytest.approx(want[key]), key
            else:
                assert (list(value) if key in ("paths", "mtimes", "tags") else value) == want[key], key
