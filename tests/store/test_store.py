"""The Milvus layer on real Milvus Lite and a real Milvus server: schema, model check, index, locking, dims."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from assetrag.errors import ConfigError, ModelMismatchError, StoreError
from assetrag.store import SCHEMA_VERSION, IndexSpec, Store


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


def test_store_roundtrip_and_model_properties(make_store, store_uri):
    store = make_store("lib")
    assert store.model_info() is None and store.count() == 0
    store.ensure("model-a", 8)
    store.upsert([_row(i) for i in range(20)])
    assert store.count() == 20 and store.model_info() == ("model-a", 8)
    hits = store.search(np.eye(8, dtype=np.float32)[3], k=3)[0]  # read-your-writes on a server too
    assert hits[0].fields["filename"] in {"3.jpg", "11.jpg", "19.jpg"} and hits[0].score == pytest.approx(1.0)
    assert hits[0].id == hits[0].fields.get("id", hits[0].id) and len(hits[0].id) == 64
    assert len(list(store.iterate(batch_size=7))) == 20
    store.delete([f"{i:064x}" for i in range(5)])
    assert store.count() == 15
    assert {h.id for h in store.search(np.eye(8, dtype=np.float32)[3], k=20)[0]}.isdisjoint(
        {f"{i:064x}" for i in range(5)}
    )
    store.upsert([{**_row(7), "filename": "seven.jpg"}])  # upsert replaces
    assert store.count() == 15 and store.get([f"{7:064x}"], ("filename",))[0]["filename"] == "seven.jpg"
    store.close()
    reopened = make_store("lib")  # collections come back released: load() handles it
    assert reopened.count() == 15
    with pytest.raises(ModelMismatchError, match="built with model 'model-a'"):
        reopened.ensure("model-b", 8)
    with pytest.raises(ModelMismatchError, match="dim 4"):
        reopened.search(np.ones(4, dtype=np.float32), k=1)
    reopened.close()


def test_a_folder_filter_matches_exactly_its_paths_on_every_backend(make_store, store_uri):
    """`filters.path_under` (what `remove FOLDER` queries): '_' and '%' in a folder's name are plain characters
    (Milvus 2.3's `like` refused escapes and Lite's took '_' as a wildcard), and a sibling whose name starts like
    the folder's is not under it."""
    from assetrag.store import filters as F

    store = make_store("lib")
    store.ensure("model-a", 8)
    paths = ["/x/b_c/1.jpg", "/x/bXc/2.jpg", "/x/b%c/3.jpg", "/x/b_c0/4.jpg", "/x/b_c/d/5.jpg", "/x/b_/6.jpg"]
    store.upsert([{**_row(i), "path": p} for i, p in enumerate(paths)])
    for folder, expected in (("/x/b_c/", [0, 4]), ("/x/b%c/", [2]), ("/x/b_/", [5]), ("/x/", list(range(6)))):
        rows = store.query(F.path_under(folder), ("id",))
        assert sorted(int(r["id"], 16) for r in rows) == expected, folder
    store.close()


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


@pytest.mark.parametrize("index", ["flat", "ivf_flat", "autoindex"])  # hnsw: the default, used everywhere
def test_index_choice_at_creation(make_store, store_uri, index):
    store = make_store("idx", index=index)
    store.ensure("m", 8)
    store.upsert([_row(i) for i in range(40)])
    expected = IndexSpec.named(index).index_type
    assert store.index_info()["index_type"] == expected and store.stats()["index"] == expected
    hit = store.search(np.eye(8, dtype=np.float32)[5], k=3)[0][0]
    assert hit.score == pytest.approx(1.0) and hit.fields["filename"] in {"5.jpg", "13.jpg", "21.jpg", "29.jpg"}


def test_index_rebuild_keeps_the_data_and_a_reopened_store_follows_it(make_store, store_uri):
    store = make_store("idx")
    store.ensure("m", 8)
    store.upsert([_row(i) for i in range(40)])
    assert store.index_info()["index_type"] == "HNSW"
    assert store.rebuild_index()["index_type"] == "HNSW"  # same type again: a plain re-index
    info = store.rebuild_index("ivf_flat")
    assert info == {**info, "index_type": "IVF_FLAT", "rows": 40, "params": {"nlist": 128}}
    reopened = make_store("idx")  # another Store (default spec) reads the index the collection has
    assert reopened.stats()["index"] == "IVF_FLAT" and reopened.count() == 40
    hit = reopened.search(np.eye(8, dtype=np.float32)[5], k=3)[0][0]
    assert hit.score == pytest.approx(1.0) and hit.fields["filename"] in {"5.jpg", "13.jpg", "21.jpg", "29.jpg"}


def test_index_rebuild_on_lite_survives_an_already_exists_retry(tmp_path):
    """A retried build that finds the index already built (Lite: code 35) counts as success."""
    store = Store(str(tmp_path / "r.db"), "lib")
    store.ensure("m", 8)
    store.upsert([_row(i) for i in range(10)])
    original = store.client.create_index
    calls = []

    def create_index_then_drop_the_connection(*args, **kwargs):
        calls.append(1)
        original(*args, **kwargs)  # the build finishes ...
        raise ConnectionError("too_many_pings")  # ... but the client never hears of it

    store.client.create_index = create_index_then_drop_the_connection
    info = store.rebuild_index("hnsw")
    assert calls and info["index_type"] == "HNSW" and store.index_info()["index_type"] == "HNSW"
    assert store.search(np.eye(8, dtype=np.float32)[2], k=1)[0][0].score == pytest.approx(1.0)
    store.close()


def test_unknown_index_and_rebuilding_nothing_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="unknown index 'ivf_pq'; choose one of auto, hnsw, flat"):
        IndexSpec.named("ivf_pq")
    store = Store(str(tmp_path / "n.db"), "lib")
    with pytest.raises(StoreError, match="does not exist yet; ingest something first"):
        store.rebuild_index("flat")
    store.close()


def test_a_new_library_gets_the_configured_index(make_library, photo_dir):
    """`--index` / Settings.index is the index a library is *created* with (not only what `assetrag index`
    rebuilds)."""
    from assetrag.config import Settings

    lib = make_library(settings=Settings(index="flat"))
    assert lib.store.index.index_type == "FLAT"
    lib.ingest(photo_dir)
    assert lib.store.index_info()["index_type"] == "FLAT" and lib.stats()["index"] == "FLAT"
    assert lib.search("a cat", k=1)[0].filename == "cat.jpg"
    default = make_library("other")
    default.ingest(photo_dir / "animals")
    assert default.stats()["index"] == "HNSW"


def test_model_mismatch_says_what_to_do_and_carries_the_built_model(make_store):
    """The store names both models and `--model auto`; the built model travels as attributes (the Library
    above may add the `--model` spec that loads it — the store does not know the embedding registry)."""
    from assetrag.embedding import spec_for_name
    from assetrag.embedding.conse import NAME as CONSE
    from assetrag.embedding.head import NAME_COMBINED

    assert spec_for_name(NAME_COMBINED) == "offline:v2" and spec_for_name(CONSE) == "offline:v1"
    store = make_store("v2lib")
    store.ensure("model-a", 384)
    with pytest.raises(ModelMismatchError, match=r"built with model 'model-a' \(dim 384\).*--model auto") as err:
        store.ensure("model-b", 512)
    e = err.value
    assert (e.library, e.built_model, e.built_dim, e.model, e.dim) == (store.name, "model-a", 384, "model-b", 512)


def test_a_library_written_by_a_newer_schema_is_refused_with_what_to_do(make_store):
    store = make_store("future")
    store.ensure("model-a", 8)
    store.client.alter_collection_properties(store.name, properties={"assetrag.schema": str(SCHEMA_VERSION + 1)})
    store.close()
    reopened = make_store("future")
    newer = rf"written by a newer assetrag \(schema {SCHEMA_VERSION + 1}; this version knows schema {SCHEMA_VERSION}\)"
    with pytest.raises(StoreError, match=newer):
        reopened.ensure("model-a", 8)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("lunar-2025", "lunar_2025"), ("2025_assets", "_2025_assets"), ("brand assets", "brand_assets"), ("été", "ete")],
)
def test_library_names_a_milvus_server_refuses_are_refused_everywhere(tmp_path, name, suggestion):
    """Milvus Lite takes '-' in a collection name, a server does not: refused up front, whatever the way in."""
    from assetrag import Library
    from assetrag.config import Settings

    message = rf"library name '{name}' is not allowed: .*letters, digits and '_'.*use e.g. '{suggestion}'"
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(library=name)  # the CLI's --library / ASSETRAG_LIBRARY
    with pytest.raises(ConfigError, match=message):
        Library(tmp_path / "a.db", library=name)
    with pytest.raises(ConfigError, match=message):
        Library(settings=Settings(uri=str(tmp_path / "a.db"), library=name))
    with pytest.raises(ConfigError, match="is 256 characters long"):
        Settings.from_env(library="a" * 256)
    for fine in ("assets", "lunar_2025", "_private", "A" * 255):
        assert Settings.from_env(library=fine).library == fine


def test_ivf_clusters_grow_with_the_library():
    spec = IndexSpec.named("ivf_flat")
    assert spec.scaled(1000) == spec
    big = spec.scaled(1_000_000)
    assert dict(big.build)["nlist"] == 4000 and dict(big.search)["nprobe"] == 62
    assert IndexSpec.named("hnsw").scaled(10**6) == IndexSpec()


def test_cli_on_a_lite_library_in_use_says_so_and_exits_2(tmp_path, photo_dir):
    uri = str(tmp_path / "busy.db")
    holder = Store(uri, "assets")  # another process (this one) has the library open
    env = {**os.environ, "ASSETRAG_URI": uri, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "assetrag.cli", "ingest", str(photo_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a hang fails here
    )
    holder.close()
    assert res.returncode == 2, res.stdout + res.stderr
    assert "another process is using it" in res.stderr and "milvus-lite server" in res.stderr
    assert "Traceback" not in res.stderr


def test_flush_on_lite_waits_for_the_background_index_build(tmp_path):
    """`Store.flush` reaches into milvus-lite (no public call) to wait for its segment indexes; it swallows a
    changed internal API so that an upgrade cannot break ingest — this test is what notices such a change."""
    from milvus_lite.server_manager import server_manager_instance

    store = Store(str(tmp_path / "lib.db"), "lib")
    store.ensure("model-a", 8)
    store.upsert([_row(i) for i in range(50)])
    _, lite, _ = server_manager_instance._servers[os.path.abspath(store.uri)]
    collection = lite.get_collection("lib")
    waited = []
    real = collection._wait_for_bg
    collection._wait_for_bg = lambda *a, **k: (waited.append(1), real(*a, **k))[1]
    store.flush()
    assert waited == [1]
    assert store.search(np.eye(8, dtype=np.float32)[3], k=1)[0][0].score == pytest.approx(1.0)
    store.close()


def test_a_library_another_process_is_still_creating_is_waited_for(make_store, store_uri):
    """pymilvus creates a collection, then its index, then loads it: a second process can come in between
    (two ingests starting at once) and must wait for the index instead of failing with "index not found"."""
    import threading

    if not store_uri.startswith("http"):
        pytest.skip("Milvus Lite is one process per file")
    creator = make_store("racing")
    creator.ensure("model-a", 8)
    creator.client.release_collection(creator.name)
    creator.client.drop_index(creator.name, "vector")  # as if caught between create_collection and create_index
    second = make_store("racing")
    waiting = threading.Event()  # set when the second store has met "index not found" and begins to wait
    real_wait = second._wait_for_any_index
    waits = []

    def wait_for_any_index(timeout: float) -> bool:
        waits.append(timeout)
        waiting.set()
        return real_wait(timeout)

    second._wait_for_any_index = wait_for_any_index
    created = []

    def create_the_index_once_it_waits() -> None:  # the creating process finishes only then: always that path
        if waiting.wait(60):
            creator.client.create_index(creator.name, creator._index_params(creator.index))
            created.append(True)

    creator_thread = threading.Thread(target=create_the_index_once_it_waits)
    creator_thread.start()
    try:
        second.ensure("model-a", 8)  # loads: waits for the index rather than failing
        second.upsert([_row(i) for i in range(4)])
        assert second.count() == 4
    finally:
        waiting.set()  # (never leave the thread waiting)
        creator_thread.join(60)
    assert waits == [60.0] and created == [True]  # it did meet the missing index, and waited it out


def test_a_library_another_process_creates_between_our_two_looks_is_joined(make_store, store_uri):
    """Two ingests start at once on a new library: one finds no library, the other creates it, then the first
    looks again and sees a collection. It must join it (same model), not call it foreign (CI once did)."""
    first, other = make_store("together"), make_store("together")
    assert first.model_info() is None
    real_exists = first.exists
    looks = []

    def exists() -> bool:  # the other process creates the library right after our first look
        looks.append(True)
        if len(looks) == 2:
            other.ensure("model-a", 8)
        return real_exists()

    first.exists = exists
    first.ensure("model-a", 8)
    first.upsert([_row(i) for i in range(3)])
    assert first.count() == 3 and other.model_info() == ("model-a", 8)
    with pytest.raises(ModelMismatchError):  # and a different model is still refused
        make_store("together").ensure("model-b", 8)


def test_threads_opening_one_lite_file_at_once_all_get_it(tmp_path):
    """Milvus Lite checks for a running server of a file only after starting one; threads of one process that
    open the same .db together (the server's start-up load beside a request) must all succeed."""
    import threading

    uri = str(tmp_path / "shared.db")
    barrier = threading.Barrier(4)
    stores, errors = [], []

    def open_it() -> None:
        barrier.wait()
        try:
            stores.append(Store(uri, "lib"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(stores) == 4
        stores[0].ensure("model-a", 8)
        stores[0].upsert([_row(1)])
        assert stores[3].count() == 1
    finally:
        for store in stores:
            store.close()


def test_only_store_imports_pymilvus_and_store_imports_nothing_above_it():
    """store/ owns Milvus (issue #10): no other module imports pymilvus, and store/ imports only errors,
    config, progress (the ProgressSink its transfers report to; layer 1 in docs/architecture.md), words (the
    terms of a row's full-text field, schema 4; layer 1), objects (bulk loading stages files in buckets; layer 1)
    and itself from assetrag (not embedding, library,
    ingest, search, ...)."""
    import ast
    from pathlib import Path

    import assetrag

    root = Path(assetrag.__file__).parent
    allowed_in_store = (
        "assetrag.errors",
        "assetrag.config",
        "assetrag.progress",
        "assetrag.words",
        "assetrag.objects",
        "assetrag.store",
    )
    for path in root.rglob("*.py"):
        in_store = "store" in path.relative_to(root).parts[:1]
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from assetrag import objects` imports assetrag.objects
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "assetrag" else [node.module]
            for name in names:
                if name.split(".")[0] in ("pymilvus", "milvus_lite"):
                    assert in_store, f"{path} imports {name}: only assetrag/store may"
                if in_store and name.startswith("assetrag"):
                    assert name.startswith(allowed_in_store), f"{path} imports {name}: store/ must not"
