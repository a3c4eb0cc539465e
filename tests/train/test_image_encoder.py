"""CLIP fine-tuned end to end in front of the visual tower (``image_encoder``, LECCR's image setting).

Design: the synthetic corpus drawn as pictures (``images=True``): 32 concepts, concept c lights
cell c of a 6 x 6 board in its own colour, two concepts per picture, captions name them. The tiny
random CLIP (48 px input, 8 px patches: one patch per cell, position embeddings interpolated from
its own 32 px) must learn which lit patch is which word. Chance SumR on 40 test items is about 80.
"""

import json

import numpy as np
import pytest
import torch
from train_helpers import load_checkpoint, sets

import ccr.train
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.models import resolve
from ccr.testing.synthetic import write_synthetic_corpus
from ccr.train.data.rows import eval_records
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.metrics import retrieval_metrics
from ccr.train.model.image_encoder import (
    ClipPixelSource,
    load_clip_vision,
    random_resized_crop,
)
from ccr.train.run.loop import train

# attention pooling finds the two lit patches among 37 tokens; mean pooling dilutes them (no learning in 12 epochs).
# No augmentation here: a concept is a place on the board, which crops and flips move.
CLIP = {"image_encoder": "tiny/clip", "image_size": 48, "lr": 3e-3, "image_encoder_lr": 2e-3, "loss": "infonce",
        "media_pooling": "attention", "dropout": 0, "image_augment": False}


@pytest.fixture(scope="module")
def picture_corpus(tmp_path_factory):
    return write_synthetic_corpus(tmp_path_factory.mktemp("pictures"), images=True)


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory, picture_corpus):
    out = tmp_path_factory.mktemp("runs") / "clip"
    train(picture_corpus, out, sets=sets(epochs=8, **CLIP), log=lambda _: None)
    return out


def test_clip_learns_end_to_end_and_the_run_loads_offline(clip_run, picture_corpus):
    results = evaluate_run(clip_run, split="test", langs=["de"], device="cpu", log=lambda _: None)["de"]
    state = load_checkpoint(clip_run / "checkpoints" / "best.pt")
    initial, _ = load_clip_vision(resolve("tiny/clip").path, pretrained=True)
    moved = [k for k, v in initial.state_dict().items()
             if not torch.equal(state["model"][f"media.encoder.model.{k}"], v)]
    assert len(moved) > 0.9 * len(initial.state_dict()), "gradients reach every CLIP layer"
    groups = load_checkpoint(clip_run / "checkpoints" / "last.pt")["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == [3e-3, 3e-3, 2e-3, 2e-3]  # the CLIP's own learning rate
    assert (clip_run / "image_tower" / "config.json").exists()
    assert json.loads((clip_run / "run.json").read_text())["env"]["image_tower"]["id"] == "tiny/clip"

    model = ccr.train.load(clip_run)  # from the run directory alone: image_tower/ + checkpoint
    records = eval_records(Corpus.open(picture_corpus), "test", "de")
    sim = model.encode_text(records.queries) @ model.encode_media(records.gallery).T
    assert retrieval_metrics(sim, records.text_to_media) == pytest.approx(results, abs=1e-6)

    model.method.load_state_dict({**state["model"], **{f"media.encoder.model.{k}": v
                                                       for k, v in initial.state_dict().items()}})
    frozen_clip = retrieval_metrics(model.encode_text(records.queries) @ model.encode_media(records.gallery).T,
                                    records.text_to_media)["sumr"]
    assert results["sumr"] > 200 and results["sumr"] > frozen_clip + 50, (results["sumr"], frozen_clip)


def test_the_pixels_are_the_clip_preprocessing_of_the_files(clip_run, picture_corpus):
    model = ccr.train.load(clip_run)
    pixels = model.source().get("s00000")
    assert pixels.shape == (1, 3 * 48 * 48) and pixels.dtype == np.float32
    assert pixels.std() > 0.1  # normalised with CLIP's constants, not raw bytes


def test_augmentation_crops_and_flips_under_the_seed_and_only_for_training(clip_run, picture_corpus):
    from PIL import Image

    image = Image.fromarray(np.arange(60 * 40 * 3, dtype=np.uint8).reshape(40, 60, 3))
    draws = [np.asarray(random_resized_crop(image, 24, torch.Generator().manual_seed(s))) for s in (0, 0, 1)]
    assert draws[0].shape == (24, 24, 3) and np.array_equal(draws[0], draws[1]) and not np.array_equal(*draws[1:])
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1)))
    crops = [np.asarray(random_resized_crop(ramp, 16), dtype=float) for _ in range(60)]
    mirrored = sum(c[:, 0].mean() > c[:, -1].mean() for c in crops)
    assert 15 < mirrored < 45  # a left-to-right ramp comes back mirrored about half the time

    model = ccr.train.load(clip_run)
    plain = model.source()
    augmented = plain.augmented()  # what training reads
    assert isinstance(plain, ClipPixelSource) and not plain.augment
    assert np.array_equal(plain.get("s00001"), plain.get("s00001"))
    torch.manual_seed(0)
    first = augmented.get("s00001")
    assert first.shape == plain.get("s00001").shape and not np.array_equal(first, augmented.get("s00001"))
    torch.manual_seed(0)
    assert np.array_equal(first, augmented.get("s00001")), "draws come from torch's seeded generator"
    run = json.loads((clip_run / "run.json").read_text())
    assert run["config"]["train"]["image_augment"] is False  # as configured; the default is True


def test_image_encoder_refuses_rivrl_and_a_model_that_is_not_clip(tmp_path, picture_corpus):
    with pytest.raises(CcrError, match="video_encoder=rivrl reads stored frame features"):
        train(picture_corpus, tmp_path / "a", sets=sets(epochs=1, video_encoder="rivrl", **CLIP), log=lambda _: None)
    with pytest.raises(CcrError, match="not a CLIP model"):
        train(picture_corpus, tmp_path / "b", sets=sets(epochs=1, **(CLIP | {"image_encoder": "tiny/bert"})),
              log=lambda _: None)
