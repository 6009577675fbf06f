"""`assetrag eval`: labelled query files, metrics, and the command on a small labelled set."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from assetrag import QueryError
from assetrag.cli import app
from assetrag.evaluate import evaluate, load_queries, mean_metrics, query_metrics


def test_metrics_by_hand():
    m = query_metrics([1, 4], n_relevant=2)
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0 and m["recall@10"] == 1.0
    assert m["mrr"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(5)) / ideal)
    none = query_metrics([], n_relevant=3)
    assert none == {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr": 0.0, "ndcg@10": 0.0}
    assert query_metrics([12], 1)["mrr"] == pytest.approx(1 / 12) and query_metrics([12], 1)["ndcg@10"] == 0.0
    assert mean_metrics([{"mrr": 1.0}, {"mrr": 0.5}]) == {"mrr": 0.75}


def test_query_files_jsonl_and_csv(tmp_path):
    jl = tmp_path / "q.jsonl"
    jl.write_text(
        "\n".join(
            [
                json.dumps({"query": "a cat", "relevant": ["animals/cats/cat.jpg"]}),
                "# a comment",
                json.dumps({"image": "things/space/rocket.jpg", "relevant_tag": "space", "id": "rocket image"}),
                json.dumps({"text": "drinks", "relevant_collection": "things"}),
            ]
        )
    )
    qs = load_queries(jl)
    assert [q.id for q in qs] == ["a cat", "rocket image", "drinks"]
    assert qs[1].image == str(tmp_path / "things/space/rocket.jpg") and qs[1].relevant_tag == "space"
    csv_file = tmp_path / "q.csv"
    csv_file.write_text("query,relevant,relevant_tag\na cat,animals/cats/cat.jpg; people/astronaut.jpg,\nx,,space\n")
    cq = load_queries(csv_file, root=tmp_path / "elsewhere")
    assert cq[0].relevant == ["animals/cats/cat.jpg", "people/astronaut.jpg"] and cq[1].relevant_tag == "space"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "x"}))
    with pytest.raises(QueryError, match="say what is relevant"):
        load_queries(bad)
    bad.write_text("{nope")
    with pytest.raises(QueryError, match="not JSON"):
        load_queries(bad)


def _labelled(photo_dir):
    f = photo_dir / "queries.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(o)
            for o in [
                {"query": "a cat", "relevant": ["animals/cats/cat.jpg"]},
                {"query": "a cup of coffee", "relevant": ["things/drinks/coffee.jpg"]},
                {"query": "a rocket", "relevant_tag": "space"},
                {"query": "people", "relevant_collection": "people"},
                {"image": "animals/cats/cat.jpg", "relevant": ["animals/cats/cat.jpg"]},
                {"query": "nobody", "relevant": ["not/there.jpg"]},
            ]
        )
    )
    return f


def test_evaluate_on_a_small_labelled_set(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    queries = load_queries(_labelled(photo_dir))
    report = evaluate(lib, queries, root=photo_dir, mode="vector", depth=5)
    by_id = {q.id: q for q in report.queries}
    assert by_id["a cat"].ranks == [1] and by_id["a cat"].metrics["mrr"] == 1.0
    assert by_id["a rocket"].relevant == 1 and by_id["people"].relevant == 2
    assert by_id["cat.jpg"].ranks == [1]  # the image query finds itself
    assert by_id["nobody"].relevant == 0 and by_id["nobody"].missing == ["not/there.jpg"]
    assert set(report.overall) == {"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"}
    assert 0.5 < report.overall["mrr"] <= 1.0  # the unscorable query is left out of the means
    assert report.config["mode"] == "vector" and report.config["assets"] == 5
    assert json.loads(json.dumps(report.to_dict()))["overall"] == report.overall


def test_eval_command_compares_two_configurations(tmp_path, photo_dir, monkeypatch):
    monkeypatch.setenv("ASSETRAG_TORCH_THREADS", "2")
    uri = str(tmp_path / "eval.db")
    runner = CliRunner()
    queries = _labelled(photo_dir)
    base = ["--uri", uri, "--model", "offline:v1", "eval", str(queries)]
    res = runner.invoke(app, [*base, "--ingest", "--compare", "mode=vector,templates=photo", "--json"])
    assert res.exit_code == 0, res.output
    reports = json.loads(res.stdout[res.stdout.index("[") :])
    assert [r["config"]["mode"] for r in reports] == ["hybrid", "vector"]
    assert reports[1]["config"]["templates"] == "photo"
    assert all(r["config"]["assets"] == 5 for r in reports)
    res = runner.invoke(app, [*base, "--compare", "mode=vector"])
    assert res.exit_code == 0, res.output
    assert "R@10" in res.stdout and "MRR" in res.stdout and "a cup of coffee" in res.stdout
    res = runner.invoke(app, [*base, "--compare", "speed=fast"])
    assert res.exit_code != 0 and "key=value" in res.output
