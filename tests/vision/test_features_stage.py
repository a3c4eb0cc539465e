"""``ccr features`` on real images and PyAV videos with the tiny CLIP: values, shapes, failures, resume."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.models import resolve
from ccr.stages.media import Sampling, load_visual
from ccr.stages.runner import RunOptions, run_stage
from ccr.vision.features import STAGE, FeaturesConfig

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("media_corpus")
from media_corpus import BROKEN, ODD_IMAGES, kill_mid_run  # noqa: E402

pytest_plugins = ["media_corpus"]  # its corpus_dir fixture: a private copy of a corpus of real media

TINY = "tiny/clip"


@pytest.fixture(scope="module")
def clip():
    """The tiny CLIP loaded the plain transformers way, as the reference the stage must match."""
    from transformers import AutoImageProcessor, CLIPModel

    path = resolve(TINY).path
    return CLIPModel.from_pretrained(path).eval(), AutoImageProcessor.from_pretrained(path)


def reference(clip, images) -> np.ndarray:
    import torch

    model, processor = clip
    with torch.inference_mode():
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        return model.get_image_features(pixel_values=pixels).pooler_output.numpy()


def run(corpus_dir: Path, batch_size: int = 4, **cfg) -> object:
    return run_stage(Corpus.open(corpus_dir), STAGE, FeaturesConfig(model=TINY, **cfg),
                     RunOptions(batch_size=batch_size, progress=False))


def test_images_and_videos_get_clip_features_and_broken_media_become_failures(corpus_dir, clip):
    summary = run(corpus_dir)
    corpus = Corpus.open(corpus_dir)
    media = corpus.table("media").sort("media_id")
    store = corpus.features("clip")
    assert store.meta == {"model": TINY, "revision": "tiny-v1", "dim": 16, "dtype": "float16", "variant": "pooled",
                          "normalized": False, "frames": 8, "fps": None}
    assert set(store.ids()) == set(media["media_id"]) - set(BROKEN)
    failures = corpus.failures()
    assert dict(zip(failures["row_id"], failures["stage"])) == dict.fromkeys(BROKEN, "features")
    for row in failures.iter_rows(named=True):
        assert BROKEN[row["row_id"]] in row["reason"]
    assert summary.rows_failed == len(BROKEN)

    for row in media.filter(~media["media_id"].is_in(list(BROKEN))).iter_rows(named=True):
        stored = store.get(row["media_id"])
        assert stored.dtype == np.float16
        visual = load_visual(corpus.resolve_media(row["path"]), row["modality"], Sampling(frames=8))
        assert stored.shape == ((8, 16) if row["modality"] == "video" else (1, 16))
        np.testing.assert_allclose(stored, reference(clip, visual.frames), rtol=2e-3, atol=2e-3)
    assert set(ODD_IMAGES) <= set(store.ids()), "CMYK and transparent images are read"
    durations = corpus.table("media").drop_nulls("decoded_duration")
    assert sorted(durations["media_id"]) == ["v0000", "v0001", "v0002"]
    assert durations["decoded_duration"].to_list() == pytest.approx([2.0] * 3)
    record = corpus.runs()[-1]
    assert record["models"]["clip"]["id"] == TINY and record["models"]["dim"] == 16
    assert record["config"]["model"] == TINY and record["status"] == "complete"


def test_patch_tokens_and_two_second_clips(corpus_dir):
    run(corpus_dir, variant="patches")
    run(corpus_dir, variant="clips2s")
    run(corpus_dir, frames=3)
    corpus = Corpus.open(corpus_dir)
    pooled, patches, clips = (corpus.features(n) for n in ("clip", "clip-patches", "clip-clips2s"))
    assert patches.meta["tokens_per_frame"] == 17 and clips.meta["clip_seconds"] == 2.0
    assert patches.get("m0000").shape == (17, 16), "CLS + 4x4 patches of a 32-pixel tiny CLIP"
    np.testing.assert_allclose(patches.get("m0000")[0], pooled.get("m0000")[0], atol=2e-3, err_msg="CLS == pooled")
    assert patches.get("v0000").shape == (8 * 17, 16), "every sampled frame's tokens, in time order"
    assert clips.get("v0000").shape == (1, 16), "a 2 s toy video is one clip"
    assert clips.get("m0000").shape == (1, 16)
    assert pooled.get("v0001").shape == (3, 16) and pooled.meta["frames"] == 3, "a new run supersedes"


def test_batching_does_not_change_features_and_a_rerun_does_nothing(corpus_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(corpus_dir, other)
    run(corpus_dir, batch_size=1)
    run(other, batch_size=7, forward_batch=5)
    a, b = Corpus.open(corpus_dir).features("clip"), Corpus.open(other).features("clip")
    assert a.ids() == b.ids()
    for media_id in a.ids():
        np.testing.assert_allclose(a.get(media_id), b.get(media_id), atol=1e-3)
    again = run(corpus_dir)
    assert again.rows_in == 0 and not again.rows_out


def test_one_store_never_mixes_two_models(corpus_dir, tmp_path):
    from ccr.testing.tiny_models import build_tiny_clip

    run(corpus_dir, name="shared", modality="image")
    other = build_tiny_clip(tmp_path / "other-clip", seed=1)
    with pytest.raises(CcrError, match="features/shared already holds tiny/clip@.* features; pick another store name with --set name="):
        run_stage(Corpus.open(corpus_dir), STAGE, FeaturesConfig(model=str(other), name="shared"),
                  RunOptions(progress=False))


@pytest.mark.parametrize("cfg, message", [
    ({"variant": "mean"}, "--variant 'mean': use one of pooled, patches, clips2s"),
    ({"frames": 0}, "--frames must be at least 1"),
    ({"variant": "clips2s", "fps": 1.0}, "--fps does not apply"),
    ({"modality": "audio"}, "--modality 'audio'"),
    ({"device": "tpu"}, "--device 'tpu'"),
    ({"model": "tiny/bert"}, "tiny/bert is a bert model; ccr features needs a CLIP model"),
])
def test_bad_options_fail_at_once_with_the_fix(corpus_dir, cfg, message):
    options = {"model": TINY, **cfg}
    with pytest.raises(CcrError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_stage(Corpus.open(corpus_dir), STAGE, FeaturesConfig(**options), RunOptions(progress=False))
    assert not Corpus.open(corpus_dir).files("features/clip")


def test_sigkill_then_resume_equals_an_uninterrupted_run(corpus_dir, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(corpus_dir, clean)
    overrides = {"model": TINY, "variant": "patches"}
    run_stage(Corpus.open(clean), STAGE, FeaturesConfig(**overrides), RunOptions(progress=False))
    done_before_kill = kill_mid_run("features", corpus_dir, overrides)
    resumed = run_stage(Corpus.open(corpus_dir), STAGE, FeaturesConfig(**overrides), RunOptions(progress=False))
    total = Corpus.open(clean).count("media")
    assert 0 < done_before_kill < total and resumed.rows_in == total - done_before_kill
    a, b = Corpus.open(clean).features("clip-patches"), Corpus.open(corpus_dir).features("clip-patches")
    assert a.ids() == b.ids()
    for media_id in a.ids():
        np.testing.assert_array_equal(a.get(media_id), b.get(media_id))
    assert Corpus.open(clean).failures().height == Corpus.open(corpus_dir).failures().height == len(BROKEN)
    shards = {p.name for p in (corpus_dir / "features" / "clip-patches").glob("*.arrow")}
    committed = {Path(f).name for c in Corpus.open(corpus_dir).commits("features") for f in c.files.values()}
    assert shards <= committed, "no orphan shard of the killed run survives"
