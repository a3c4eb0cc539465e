"""RIVRL learns a video corpus end to end: ``--method rivrl``, and its tower under other methods.

Corpus design (``ccr.testing.synthetic`` with ``scenes=True``): 200 train / 40 val / 40 test
videos of 2 to 8 frames; each video shows two of 32 concepts, one per contiguous scene, every
frame only its scene's concept (a fixed random 32-d vector) plus noise, and its captions name
both concepts. No single frame shows the whole video, frame counts differ within every batch,
and test videos are unseen concept pairs, so retrieving them needs words tied to concepts and
the frames read as a whole. Chance SumR on 40 test videos is about 2 x (1 + 5 + 10) / 40 x 100
= 80; the untrained model scores near chance, four epochs of the tiny towers several times more.
"""

import json

import numpy as np
import pytest
from train_helpers import load_checkpoint, sets
from typer.testing import CliRunner

import ccr.train
from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.models import resolve
from ccr.train.data.batching import build_eval_data
from ccr.train.data.rows import eval_records
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.retrieval import evaluate_model
from ccr.train.model.towers import load_text_encoder
from ccr.train.model.video.rivrl import RivrlTower
from ccr.train.run.loop import train
from ccr.train.run.trained import instantiate


@pytest.fixture(scope="module")
def video_corpus(tmp_path_factory):
    from ccr.testing.synthetic import write_synthetic_corpus

    return write_synthetic_corpus(tmp_path_factory.mktemp("video"), frames=8, scenes=True)


def _fused_sumr(model, lang: str) -> float:
    """Test SumR of ``model.method`` with its own score (RIVRL: the four spaces fused)."""
    records = eval_records(model.corpus(), "test", lang)
    data = build_eval_data(model.corpus(), records, frozenset(), tokenizer=model.tokenizer, source=model.source(),
                           max_tokens=64, max_frames=64, cache=None, log=lambda _: None)
    return evaluate_model(model.method, data, batch_size=64, device=model.device)["sumr"]


def test_rivrl_learns_english_text_to_video(tmp_path, video_corpus):
    frames = [len(Corpus.open(video_corpus).features("synthetic-concepts").get(f"s{i:05d}")) for i in range(280)]
    assert min(frames) == 2 and max(frames) == 8  # the corpus really has variable frame counts
    out = tmp_path / "rivrl"
    result = train(video_corpus, out, method="rivrl", sets=sets(epochs=4, concepts=64), log=lambda _: None)
    assert [list(h["val"]) for h in result.history] == [["en"]] * 4  # English queries by default
    assert set(result.history[0]["train"]) >= {"latent", "concept", "bce_video", "bce_text"}

    scores = evaluate_run(out, split="test", device="cpu", log=lambda _: None)  # the CPU, as ccr.train.load
    assert list(scores) == ["en"] and scores["en"]["t2v_sumr"] > 200
    model = ccr.train.load(out)
    assert isinstance(model.method.media, RivrlTower)
    trained = _fused_sumr(model, "en")
    assert trained == pytest.approx(scores["en"]["sumr"])  # evaluate scores with the method's fused score
    encoder, _ = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    env = json.loads((out / "run.json").read_text())["env"]
    model.method = instantiate(type(model.method), model.train_cfg, model.method_cfg, encoder=encoder, env=env).eval()
    untrained = _fused_sumr(model, "en")
    assert untrained < 200 and trained > 400 and trained > untrained + 200


def test_the_rivrl_tower_under_baseline_from_the_cli_and_under_dcot(tmp_path, video_corpus):
    out = tmp_path / "baseline"
    args = [arg for s in sets() for arg in ("--set", s)]
    result = CliRunner().invoke(app, ["train", str(video_corpus), "--out", str(out), "--video-encoder", "rivrl",
                                      "--epochs", "3", *args])
    assert result.exit_code == 0, result.output
    assert "video_encoder='rivrl'" in result.output
    assert json.loads((out / "run.json").read_text())["config"]["train"]["video_encoder"] == "rivrl"
    result = CliRunner().invoke(app, ["evaluate", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "eval" / "test.de.json").read_text())["metrics"]["sumr"] > 350

    model = ccr.train.load(out)  # the architecture comes from the checkpoint, not the defaults
    assert isinstance(model.method.media, RivrlTower)
    ids = ["s00240", "s00241", "s00242"]
    by_id = model.encode_media(ids)
    store = Corpus.open(video_corpus).features("synthetic-concepts")
    by_features = model.encode_media([np.asarray(store.get(m)) for m in ids])  # ragged frame counts
    assert by_id.shape == (3, 64) and np.allclose(np.linalg.norm(by_id, axis=1), 1, atol=1e-5)
    assert np.allclose(by_id, by_features, atol=1e-5)

    dcot = train(video_corpus, tmp_path / "dcot", method="dcot", sets=sets(epochs=3, video_encoder="rivrl"),
                 log=lambda _: None)
    assert dcot.best_value > 350
    state = load_checkpoint(tmp_path / "dcot" / "checkpoints" / "best.pt")
    assert any(k.startswith("media.attention.") for k in state["model"])
