"""What `GenerationOptions` refuses on its own, and the checks against a backend's lists."""

from __future__ import annotations

import pytest

from assetrag.generation import GenerationOptions, GenerationOptionsError
from assetrag.generation.options import check_options


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"timeout_s": 0}, {"max_retries": -1}, {"retry_backoff_s": -1}, {"max_retry_wait_s": -2}]
)
def test_options_reject_nonsense(kwargs):
    with pytest.raises(GenerationOptionsError):
        GenerationOptions(**kwargs)


def test_check_options_names_the_value_and_the_accepted_ones():
    kw = {"backend": "b", "model": "m", "aspect_ratios": ("1:1", "16:9"), "sizes": ("S",), "max_n": 2}
    check_options(GenerationOptions(aspect_ratio="16:9", size="S", n=2), **kw)
    with pytest.raises(
        GenerationOptionsError, match=r"aspect ratio '4:3' is not accepted by b model 'm'; use one of: 1:1, 16:9"
    ):
        check_options(GenerationOptions(aspect_ratio="4:3"), **kw)
    with pytest.raises(GenerationOptionsError, match=r"size 'L' .* use one of: S"):
        check_options(GenerationOptions(size="L"), **kw)
    with pytest.raises(GenerationOptionsError, match="does not take a size"):
        check_options(GenerationOptions(size="L"), **{**kw, "sizes": ()})
    check_options(GenerationOptions(size="any"), **kw, size_ok=lambda s: s == "any")
