"""Parquet export/import of a whole library (`assetrag export` / `import`) on real Milvus Lite and a real
server: every field and vector equal after a round trip; a model mismatch and foreign files refused."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from store_rows import DIM, assert_holds, make_rows

from assetrag.errors import ModelMismatchError, StoreError
from assetrag.store import SCHEMA_VERSION
from assetrag.store import schema as S
from assetrag.store.archive import export_library, import_archive, read_meta


def test_export_then_import_round_trips_every_field_and_vector(tmp_path, make_store, store_uri):
    rows = make_rows(2300)
    src = make_store("src", uri=str(tmp_path / "src.db"), index="flat")
    src.ensure("model-a", DIM)
    src.upsert(rows)
    out = tmp_path / "backup" / "lib.parquet"
    report = export_library(src, out, batch=500)
    assert (report.rows, report.model, report.dim, report.schema_version) == (2300, "model-a", DIM, SCHEMA_VERSION)
    assert not (tmp_path / "backup" / "lib.parquet.partial").exists()
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_rows == 2300 and parquet.num_row_groups == 5  # written a batch at a time
    assert parquet.schema_arrow.field("vector").type == pa.list_(pa.float32(), DIM)
    meta = read_meta(out)
    assert meta["model"] == "model-a" and meta["dim"] == DIM and meta["index"]["index_type"] == "FLAT"
    first = parquet.read_row_group(0).to_pylist()[0]
    assert isinstance(first["metadata"], str) and json.loads(first["metadata"])["nested"] == {"x": [1, 2.5, None]}

    dst = make_store("restored")  # the test's backend
    back = import_archive(dst, out, batch=700)
    assert back.rows == 2300 and dst.model_info() == ("model-a", DIM)
    assert dst.index_info()["index_type"] == "FLAT"
    assert_holds(dst, rows)
    again = import_archive(dst, out)  # idempotent: upserts by id
    assert again.rows == 2300 and dst.count() == 2300


def test_an_archive_of_another_model_or_no_archive_is_refused(tmp_path, make_store):
    src = make_store("src", uri=str(tmp_path / "a.db"))
    src.ensure("model-a", DIM)
    src.upsert(make_rows(5))
    out = export_library(src, tmp_path / "a.parquet").path
    other = make_store("other", uri=str(tmp_path / "b.db"))
    other.ensure("model-b", DIM)
    with pytest.raises(ModelMismatchError, match=r"embedded with model 'model-a'.*built with 'model-b'.*--library"):
        import_archive(other, out)
    assert other.count() == 0
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    with pytest.raises(StoreError, match="is not an assetrag library export"):
        import_archive(other, plain)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(StoreError, match="is not a Parquet file assetrag can read"):
        read_meta(tmp_path / "junk.parquet")
    with pytest.raises(StoreError, match="does not exist: nothing to export"):
        export_library(make_store("none", uri=str(tmp_path / "c.db")), tmp_path / "none.parquet")


def test_an_archive_of_an_older_schema_imports_with_defaults(tmp_path, make_store):
    """A schema 1 export (no phash/media/time columns) gets the defaults of the newer fields."""
    rows = make_rows(20)
    src = make_store("src", uri=str(tmp_path / "a.db"))
    src.ensure("model-a", DIM)
    src.upsert(rows)
    out = tmp_path / "v2.parquet"
    export_library(src, out)
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"assetrag"])
    old = table.drop_columns(list(S.DEFAULTS)).replace_schema_metadata(
        {b"assetrag": json.dumps({**meta, "schema_version": 1}).encode()}
    )
    pq.write_table(old, tmp_path / "v1.parquet")
    dst = make_store("dst", uri=str(tmp_path / "b.db"))
    assert import_archive(dst, tmp_path / "v1.parquet").schema_version == 1
    assert_holds(dst, [{**r, **S.DEFAULTS} for r in rows])
