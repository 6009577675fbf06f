"""`rerank` on the search routes (`Query.rerank`; the maths and the ordering: tests/test_rerank.py)."""

from __future__ import annotations


def test_search_takes_rerank(client):
    params = {"q": "a cat, people", "limit": 5, "understand": "false"}
    plain = client.get("/api/search", params={**params, "rerank": "none"}).json()["items"]
    default = client.get("/api/search", params=params).json()["items"]  # re-ranked by default
    assert all(h["rerank_score"] is not None for h in default)
    page = client.get("/api/search", params={**params, "rerank": "scores"}).json()
    items = page["items"]
    assert page["mode"] == "hybrid" and sorted(h["id"] for h in items) == sorted(h["id"] for h in plain)
    assert all(h["rerank_score"] is not None for h in items) and all(h["rerank_score"] is None for h in plain)
    assert [h["rerank_score"] for h in items] == sorted((h["rerank_score"] for h in items), reverse=True)
    form = client.post("/api/search", data={**params, "rerank": "scores"}).json()["items"]
    assert [h["id"] for h in form] == [h["id"] for h in items]
    res = client.get("/api/search", params={**params, "rerank": "prf"})
    assert res.status_code == 422 and "rerank" in res.text
