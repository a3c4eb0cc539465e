"""LLaVA-family describers with the tiny random models: batched generation equals one request at a time."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ccr import models
from ccr.caption.describe import Describer, Request, family_of, resolve_mllm
from ccr.caption.prompts import PROMPTS, expand
from ccr.errors import CcrError
from ccr.stages.media import Visual


def _image(w: int, h: int, colour: tuple[int, int, int]) -> Visual:
    return Visual(frames=[Image.new("RGB", (w, h), colour)], times=[0.0], duration=None)


def _video(n: int) -> Visual:
    rng = np.random.default_rng(n)
    frames = [Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)) for _ in range(n)]
    return Visual(frames=frames, times=[k / n for k in range(n)], duration=1.0)


def test_prompts_are_named_and_expand_in_order():
    assert [p.id for p in expand(["detailed", "multiview", "objects"])] == [
        "detailed", "objects", "actions", "scene", "attributes"]
    assert "this video" in PROMPTS["detailed"].text(True) and "this image" in PROMPTS["detailed"].text(False)
    with pytest.raises(CcrError, match="unknown prompt 'caption'; known prompts: detailed"):
        expand(["caption"])
    with pytest.raises(CcrError, match="no prompt given"):
        expand([])


@pytest.mark.parametrize("tiny", ["tiny/llava", "tiny/llava-next"])
def test_a_batched_row_equals_the_row_generated_alone(tiny):
    describer = Describer(models.resolve(tiny))
    visuals = [_image(64, 40, (220, 30, 30)), _video(3), _image(32, 32, (30, 70, 220)), _image(50, 70, (30, 160, 60))]
    prompts = ["detailed", "objects", "scene", "attributes"]
    requests = [Request(v, PROMPTS[p].text(v.is_video)) for v, p in zip(visuals, prompts)]
    batched = describer.describe(requests, max_new_tokens=16)
    alone = [describer.describe([r], max_new_tokens=16)[0] for r in requests]
    assert batched == alone
    assert all(isinstance(t, str) and t for t in batched) and len(set(batched)) > 1
    assert describer.describe([], max_new_tokens=4) == []


def test_llava_table_keys_resolve_through_the_model_table_and_aliases(tmp_path):
    with pytest.raises(CcrError, match="cannot load llava-hf/llava-1.5-7b-hf.*pass --model /path/to/it"):
        resolve_mllm("llava")
    local = models.resolve("tiny/llava").path
    assert resolve_mllm("llava", {"llava": str(local)}).path == local
    assert resolve_mllm("llava", {"llava-hf/llava-1.5-7b-hf": str(local)}).path == local
    assert family_of(models.resolve("tiny/llava-next")) == "llava_next"
    with pytest.raises(CcrError, match="tiny/clip is a clip model; ccr caption needs a LLaVA-family model"):
        family_of(models.resolve("tiny/clip"))
