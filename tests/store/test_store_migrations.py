"""Schema migrations on real Milvus Lite and a real Milvus server: every older schema → the current one, with
every field and vector equal afterwards, and a kill -9 in each phase of the copy-and-swap recovered on the
next open."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from store_rows import DIM, assert_holds, make_rows

from assetrag.store import SCHEMA_VERSION, IndexSpec, Store
from assetrag.store import migrations as M
from assetrag.store import schema as S
from assetrag.words import document_text

OLDER = [v for v in sorted(M.SCHEMAS) if v < SCHEMA_VERSION]
SERVER = pytest.mark.server
#: every older schema on Lite; on the server only the oldest, whose upgrade runs every step there (1 → 2 → 3 → 4).
#: Starting at 2 or 3 differs only in which frozen schema `create_at_version` builds (backend-independent, and
#: covered on Lite); each server step costs ~8 s of collection creates, flushes and loads on 2 cores.
UPGRADE_CASES = [
    *(pytest.param("lite", v, id=f"lite-{v}") for v in OLDER),
    pytest.param("server", OLDER[0], id=f"server-{OLDER[0]}", marks=SERVER),
]


def create_old(store: Store, version: int, rows: list[dict], spec: IndexSpec | None = None) -> list[dict]:
    """A library at schema `version` holding `rows` (cut to that schema's fields); returns what the
    current schema should hold afterwards (the cut rows with the defaults of the newer fields)."""
    fields = M.create_at_version(store.client, store.name, version, "model-a", DIM, spec)
    old = [{k: v for k, v in r.items() if k in fields} for r in rows]
    for i in range(0, len(old), 500):
        store.client.insert(store.name, old[i : i + 500])
    return [S.with_defaults(r) for r in old]


@pytest.mark.parametrize(("store_uri", "version"), UPGRADE_CASES, indirect=["store_uri"])
def test_an_older_library_is_upgraded_on_open_with_every_field_and_vector(make_store, store_uri, version, monkeypatch):
    monkeypatch.setattr(M, "BATCH", 100)  # copy batches of 100 rows instead of 1000: the same steps, less data
    rows = make_rows(230)  # three copy batches
    expected = create_old(make_store("old"), version, rows, IndexSpec.named("ivf_flat"))
    store = make_store("old")
    assert store.model_info() == ("model-a", DIM)  # opening upgrades
    assert S.schema_version(store.properties()) == SCHEMA_VERSION
    assert store.properties().get(M.PROP_STATE, M.DONE) == M.DONE and M.leftovers(store.client, store.name) == []
    assert store.index_info()["index_type"] == "IVF_FLAT"  # the index it had
    assert_holds(store, expected)
    hit = store.search(np.asarray(rows[7]["vector"], np.float32), k=1, fields=("id", "media", "time"))[0][0]
    assert hit.id == rows[7]["id"] and hit.fields["media"] == "image" and hit.fields["time"] == -1.0
    store.upsert([{k: v for k, v in rows[8].items() if k not in S.DEFAULTS}])  # an old row builder still works
    assert store.get([rows[8]["id"]], ("phash", "media"))[0] == {"id": rows[8]["id"], "phash": "", "media": "image"}
    again = make_store("old")  # a current library: nothing to do
    assert M.upgrade(again.client, again.name) is None and again.count() == len(rows)


def test_the_current_schema_round_trips_every_field(make_store, store_uri):
    store = make_store("new")
    store.ensure("model-a", DIM)
    rows = make_rows(50)
    store.upsert(rows)
    assert_holds(store, rows)


#: one kill in each phase of the copy-and-swap, i.e. each way the next open finishes it. The copy's own steps
#: ("migrate.created": empty, "migrate.batch.N": part copied, "migrate.copied": all copied but not marked
#: complete) all leave an unmarked copy that the next open drops and redoes; "migrate.batch.2" stands for them
#: (a copy holding some rows, the case a wrong count check would take for complete).
KILL_POINTS = [
    "migrate.batch.2",  # part copied, not marked complete: dropped, redone
    "migrate.complete",  # marked complete, old still there: old dropped, copy renamed
    "migrate.dropped",  # old gone, copy not renamed: renamed
    "migrate.renamed",  # renamed, marker not cleared: cleared
]


#: where each kill lands: on Lite in the first step (then the next open also runs the steps after the one it
#: finished) and in the step that adds the full-text fields (Lite's copy carries a BM25 function); on the server
#: in the last step only. Milvus 2.3.5 has no full-text search, so its 3 → 4 copy is the same `_copy_step` and
#: the same recovery (`_swap`, `_finish_interrupted`) as its 1 → 2 copy, with no function; killing it there costs
#: one server step (~8 s) before the recovery instead of three, and the chain after a recovered step is
#: backend-independent (Lite start 1). Every kill point still runs on both backends.
KILL_CASES = [
    pytest.param("lite", 1, id="lite-1"),
    pytest.param("lite", 3, id="lite-3"),
    pytest.param("server", 3, id="server-3", marks=SERVER),
]


@pytest.mark.parametrize(("store_uri", "start"), KILL_CASES, indirect=["store_uri"])
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_any_step_of_the_upgrade_is_finished_by_the_next_open(
    make_store, store_uri, point, start, monkeypatch
):
    # copy batches of 100 rows in both processes (as the upgrade test above): 230 rows are three batches, so
    # "migrate.batch.2" still dies with a copy part-filled (200 of 230 rows) — the same steps, less data
    monkeypatch.setattr(M, "BATCH", 100)
    rows = make_rows(230, seed=1)
    first = make_store("crash")
    expected = create_old(first, start, rows)
    first.close()  # Milvus Lite: one process per file
    code = (
        "import logging, sys\n"
        "from assetrag.store import Store, migrations\n"
        "migrations.BATCH = 100\n"
        f"Store({store_uri!r}, {first.name!r}).count()\n"
        "sys.exit(3)\n"  # not killed: the kill point was never reached
    )
    env = {**__import__("os").environ, M.KILL_ENV: point}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == -9, res.stdout + res.stderr
    monkeypatch.setattr(M, "STALE_AFTER_S", 0.0)  # the dead process' copy is abandoned at once
    store = make_store("crash")
    assert S.schema_version(store.properties()) == SCHEMA_VERSION
    assert M.leftovers(store.client, store.name) == []
    assert store.properties().get(M.PROP_STATE, M.DONE) == M.DONE
    assert_holds(store, expected)
    assert_has_text(store, expected)


def assert_has_text(store: Store, expected: list[dict]) -> None:
    """Every row's schema 4 `text` is the words of its other fields; BM25 in Milvus where the backend has it."""
    texts = {r["id"]: r["text"] for r in store.iterate(("id", "text"), batch_size=700)}
    assert texts == {r["id"]: document_text(r) for r in expected}
    assert store.fulltext == S.supports_fulltext(store.client) == (not store.is_server)  # 2.3.5: no full text


def test_a_schema_3_library_gains_the_text_field_and_bm25_in_milvus(make_store, store_uri):
    rows = make_rows(40)
    rows[5]["metadata"] = {"title": "Zanzibar sunsets", "usage": "zanzibar ignored"}
    rows[6]["tags"] = ["zanzibar"]
    expected = create_old(make_store("old3"), 3, rows)
    store = make_store("old3")
    assert S.schema_version(store.properties()) == SCHEMA_VERSION == 4
    assert_holds(store, expected)
    assert_has_text(store, expected)
    assert document_text(rows[5]).endswith("zanzibar sunset")  # stemmed, `usage` left out
    assert store.stats()["fulltext"] == store.fulltext
    if store.fulltext:
        assert [h.id for h in store.text_search("zanzibar", 5)] == [rows[6]["id"], rows[5]["id"]]  # shorter text
        assert (
            store.text_search("zanzibar", 5, filter=f'collection == "{rows[5]["collection"]}"')[0].id == rows[5]["id"]
        )
    store.upsert([{**rows[7], "metadata": {"caption": "Zanzibar"}}])  # a write derives `text` again
    assert store.get([rows[7]["id"]], ("text",))[0]["text"].endswith("zanzibar")
    if store.fulltext:
        assert rows[7]["id"] in {h.id for h in store.text_search("zanzibar", 5)}


def test_a_library_whose_only_copy_is_mid_rename_opens(make_store, store_uri):
    """No library, a complete copy (killed between drop and rename): `exists()` finishes the rename. The library
    is upgraded from the last older schema (one copy step) to make the current-schema copy."""
    store = make_store("gone")
    expected = create_old(store, OLDER[-1], make_rows(10))
    M.upgrade(store.client, store.name)
    store.client.rename_collection(store.name, M.temp_name(store.name, SCHEMA_VERSION))
    store.client.alter_collection_properties(M.temp_name(store.name, SCHEMA_VERSION), {M.PROP_STATE: M.COMPLETE})
    reopened = make_store("gone")
    assert reopened.exists() and reopened.model_info() == ("model-a", DIM)
    assert_holds(reopened, expected)


def test_a_temp_name_fits_a_servers_limit():
    assert M.temp_name("assets", 2) == "assets__v2"
    long = M.temp_name("a" * 255, 2)
    assert len(long) == 255 and long.endswith("__v2") and long != M.temp_name("a" * 254 + "b", 2)
