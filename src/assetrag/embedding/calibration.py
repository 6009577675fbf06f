"""Per-model "no good match" cut-offs: the cosine under which a text query's hits are weak.

Calibrated on the *tune* halves of the labelled sets of scripts/make_eval_sets.py (emoji × CLDR names in English
and French, an openclipart slice; vector mode, top 10) by scripts/calibrate_weak.py: the cut-off is the highest
cosine c such that, among the top-10 hits scoring under c, fewer than `PRECISION` are relevant. docs/quality.md
("No good match") has the data and the precision above and below each cut-off on the held-out halves.

A model without an entry (CLIP and other checkpoints: nothing measured here) gets no cut-off: no hit is marked.
"""

from __future__ import annotations

#: the precision under which hits count as weak (relevant share of the top-10 hits scoring under the cut-off)
PRECISION = 0.02

#: stored model name → cut-off (cosine of a text query to an image vector)
WEAK_BELOW: dict[str, float] = {
    "offline:conse-effnetlite0-minilm-v1": 0.0,
    "offline:conse-head-effnetlite0-minilm-v2": 0.0,
}


def weak_threshold(model_name: str | None) -> float | None:
    """The cut-off for `model_name` (None when it has not been calibrated)."""
    return WEAK_BELOW.get(model_name or "")
