"""Per-model "no good match" cut-offs: the cosine under which a text query's hits are weak.

Calibrated on the *tune* halves of the labelled sets of scripts/make_eval_sets.py (emoji × CLDR names in English
and French, an openclipart slice; vector mode, top 10) by scripts/calibrate_weak.py: the cut-off is the cosine
above which `KEEP` (95 %) of the relevant top-10 hits score. docs/quality.md ("No good match") has the precision
above and below each cut-off on the held-out halves.

A model without an entry (CLIP and other checkpoints: nothing measured here) gets no cut-off: no hit is marked.
"""

from __future__ import annotations

#: the share of the relevant top-10 hits (tune halves) that score above the cut-off
KEEP = 0.95

#: stored model name → cut-off (cosine of a text query to an image vector)
WEAK_BELOW: dict[str, float] = {
    "offline:conse-effnetlite0-minilm-v1": 0.22,  # held out: 1.5 % of hits above relevant, 0.5 % below
    "offline:conse-head-effnetlite0-minilm-v2": 0.23,  # held out: 6.3 % above, 1.2 % below
}


def weak_threshold(model_name: str | None) -> float | None:
    """The cut-off for `model_name` (None when it has not been calibrated)."""
    return WEAK_BELOW.get(model_name or "")
