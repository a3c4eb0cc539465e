"""The baseline learns the synthetic corpus; plug-in hooks and auxiliary optimizers work.

Design (ccr.testing.synthetic): 32 latent concepts, each a fixed random 32-d vector and an English
and a German word; an item's features are the sum of its two concepts' vectors plus noise, its
captions name the two concepts, the MT caption translates word by word, and val/test German
captions use other templates on unseen concept pairs. Retrieving them needs word -> concept
learning. Chance SumR on 40 test items is about 2 x (1 + 5 + 10) / 40 x 100 = 80; an untrained
model scores near it, six epochs of the tiny towers score several times more.
"""

import json

import numpy as np
import pytest
from train_helpers import AuxBaseline, load_checkpoint, sets

import ccr.train
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.models import resolve
from ccr.train.data.rows import eval_records
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.metrics import retrieval_metrics
from ccr.train.model.methods import METHODS
from ccr.train.model.methods.baseline import Baseline
from ccr.train.model.towers import load_text_encoder
from ccr.train.run.loop import train
from ccr.train.run.trained import instantiate


def _sumr(model, records) -> dict[str, float]:
    """Metrics computed through the Python API alone: encode_text / encode_media."""
    sim = model.encode_text(records.queries) @ model.encode_media(records.gallery).T
    return retrieval_metrics(sim, records.text_to_media)


def test_baseline_beats_chance_and_the_untrained_model(trained_run, synth_corpus):
    history = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 7))
    val = [h["val"]["de"]["sumr"] for h in history]
    best = json.loads((trained_run / "run.json").read_text())["best_epoch"]
    assert best == int(np.argmax(val)) + 1 and history[best - 1]["select"]["value"] == max(val)  # val picks best

    results = evaluate_run(trained_run, split="test", langs=["de"], device="cpu", log=lambda _: None)
    model = ccr.train.load(trained_run)  # on the CPU, as evaluate above: both paths on one device
    records = eval_records(Corpus.open(synth_corpus), "test", "de")
    api = _sumr(model, records)
    assert api == pytest.approx(results["de"], abs=1e-6)  # the API and ccr evaluate agree
    saved = json.loads((trained_run / "eval" / "test.de.json").read_text())
    assert saved["metrics"] == pytest.approx(results["de"]) and saved["epoch"] == best

    encoder, _ = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    model.method = instantiate(Baseline, model.train_cfg, model.method_cfg, encoder=encoder,
                               env={"media_dim": 32, "langs": ["de"], "n_train": 0})
    untrained = _sumr(model, records)["sumr"]
    assert untrained < 150 and results["de"]["sumr"] > 300 and results["de"]["sumr"] > untrained + 150


def test_infonce_with_learnable_temperature_learns(tmp_path, synth_corpus):
    result = train(synth_corpus, tmp_path / "run", sets=sets(epochs=3, loss="infonce"), log=lambda _: None)
    assert result.best_value > 300
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    temperature = [v for k, v in state["model"].items() if k.endswith("log_t")]
    assert len(temperature) == 1 and temperature[0].exp().item() != pytest.approx(0.07)  # it moved


def test_hooks_and_an_auxiliary_optimizer(tmp_path, synth_corpus, monkeypatch):
    """A discriminator with its own Adam (NRCCR's pattern) trains beside the main objective."""
    monkeypatch.setitem(METHODS, "aux-test", "train_helpers:AuxBaseline")
    AuxBaseline.calls.clear()
    out = tmp_path / "run"
    train(synth_corpus, out, method="aux-test", sets=sets(epochs=2), log=lambda _: None)
    assert AuxBaseline.calls == ["train_start:400", "epoch_start:0:0", "epoch_end:0:['de']",
                                 "epoch_start:1:12", "epoch_end:1:['de']"]
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert len(state["aux"]) == 1 and len(state["aux"][0]["state"]) == 2  # Adam state for weight and bias
    main_ids = {i for group in state["optimizer"]["param_groups"] for i in group["params"]}
    assert len(main_ids) == sum(1 for k in state["model"] if "discriminator" not in k)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "gen" in history[0]["train"]
    train(synth_corpus, out, method="aux-test", sets=sets(epochs=3), log=lambda _: None)  # resume with aux state
    assert AuxBaseline.calls[-3:] == ["train_start:400", "epoch_start:2:24", "epoch_end:2:['de']"]


def test_selection_on_test_is_refused_and_a_run_holds_one_method(tmp_path, trained_run, synth_corpus, monkeypatch):
    with pytest.raises(CcrError, match="selection on the test split is not allowed"):
        train(synth_corpus, tmp_path / "x", sets=sets(val_split="test"))
    monkeypatch.setitem(METHODS, "aux-test", "train_helpers:AuxBaseline")
    with pytest.raises(CcrError, match="holds a baseline run.*--fresh"):
        train(synth_corpus, trained_run, method="aux-test", sets=sets())
    with pytest.raises(CcrError, match="unknown method 'nope'; methods: baseline"):
        train(synth_corpus, tmp_path / "y", method="nope")
