"""The Milvus layer on a real Milvus Lite: schema, model check, locking, dims."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from assetrag.errors import ModelMismatchError, StoreError
from assetrag.store import Store


def _row(i: int, dim: int = 8) -> dict:
    v = np.zeros(dim, dtype=np.float32)
    v[i % dim] = 1
    return {
        "id": f"{i:064x}",
        "vector": v.tolist(),
        "path": f"/x/{i}.jpg",
        "paths": [f"/x/{i}.jpg"],
        "mtimes": [i],
        "filename": f"{i}.jpg",
        "size": i,
        "mtime": i,
        "width": 1,
        "height": 1,
        "tags": ["t"],
        "collection": "c",
        "source": "ingested",
        "lineage": {},
        "metadata": {},
    }


def test_store_roundtrip_and_model_properties(tmp_path):
    store = Store(str(tmp_path / "s.db"), "lib")
    assert store.model_info() is None and store.count() == 0
    store.ensure("model-a", 8)
    store.upsert([_row(i) for i in range(20)])
    assert store.count() == 20 and store.model_info() == ("model-a", 8)
    hits = store.search(np.eye(8, dtype=np.float32)[3], k=3)[0]
    assert hits[0].fields["filename"] in {"3.jpg", "11.jpg", "19.jpg"} and hits[0].score == pytest.approx(1.0)
    assert len(list(store.iterate(batch_size=7))) == 20
    store.delete([f"{i:064x}" for i in range(5)])
    assert store.count() == 15
    store.close()
    reopened = Store(str(tmp_path / "s.db"), "lib")  # collections come back released: load() handles it
    assert reopened.count() == 15
    with pytest.raises(ModelMismatchError, match="built with model 'model-a'"):
        reopened.ensure("model-b", 8)
    with pytest.raises(ModelMismatchError, match="dim 4"):
        reopened.search(np.ones(4, dtype=np.float32), k=1)
    reopened.close()


def test_bad_uri_is_explained(tmp_path):
    with pytest.raises(StoreError, match="neither a Milvus Lite path"):
        Store(str(tmp_path / "library"), "lib")


def test_second_process_on_a_lite_file_gets_a_clear_message(tmp_path):
    uri = str(tmp_path / "locked.db")
    store = Store(uri, "lib")
    store.ensure("m", 8)
    code = (
        "from assetrag.store import Store\n"
        "from assetrag.errors import StoreLockedError\n"
        "try:\n"
        f"    Store({uri!r}, 'lib').count()\n"
        "except StoreLockedError as e:\n"
        "    print('LOCKED', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOCKED" in res.stdout and "another process" in res.stdout, res.stdout + res.stderr
    store.close()
