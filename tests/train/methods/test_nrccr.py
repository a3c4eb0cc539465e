"""NRCCR learns the synthetic corpus, and its pieces work as the paper's code does.

Corpus (tests/train/conftest.py, ccr.testing.synthetic): 32 concepts, each a random feature vector
and an English and a German word; an item's features are the sum of its two concepts' vectors plus
noise, the MT caption translates its English caption word by word and the back-translation maps it
back; German test captions use other templates on unseen concept pairs. Chance SumR on the 40 test
items is about 80; the untrained model scores near it and six epochs of the tiny towers score
several times more.
"""

import json

import pytest
import torch
from methods_helpers_nc import (
    STEP,
    batch,
    build,
    history,
    train_run,
    trained_and_untrained_sumr,
)
from train_helpers import load_checkpoint

import ccr.train
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.train.data.rows import eval_records
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.metrics import fuse_scores, retrieval_metrics
from ccr.train.model.towers import masked_mean
from ccr.train.run import optim


@pytest.fixture(scope="module")
def nrccr_run(tmp_path_factory, synth_corpus):
    # on the CPU: its validation numbers are compared with the Python API's, which runs on the CPU
    return train_run(tmp_path_factory, synth_corpus, "nrccr", epochs=6, device="cpu")


def test_nrccr_learns_far_above_chance_and_the_untrained_model(nrccr_run, synth_corpus):
    last = history(nrccr_run)[-1]
    assert set(last["train"]) == {"ve", "vt", "eb", "sim", "feat", "adv", "loss"}
    trained, untrained = trained_and_untrained_sumr(nrccr_run, synth_corpus)
    assert untrained < 150 and trained > 300 and trained > untrained + 150


def _native_and_translated(run, corpus, split):
    """The run's best model scoring ``split``'s German queries and their English MT against the gallery."""
    model = ccr.train.load(run)
    records = eval_records(Corpus.open(corpus), split, "de", translated=True)
    gallery = model.encode_media(records.gallery)
    return model.encode_text(records.queries) @ gallery.T, model.encode_text(records.translated) @ gallery.T, records


def _min_max(x):
    return (x - x.min()) / (x.max() - x.min())


def test_evaluation_scores_native_queries_unless_translate_test_is_asked_for(nrccr_run, synth_corpus):
    native, translated, records = _native_and_translated(nrccr_run, synth_corpus, "test")
    default = evaluate_run(nrccr_run, split="test", langs=["de"], device="cpu",
                           log=lambda _: None)  # the same protocol as all
    assert default["de"] == pytest.approx(retrieval_metrics(native, records.text_to_media), abs=1e-6)
    assert json.loads((nrccr_run / "eval" / "test.de.json").read_text())["protocol"]["queries"] == "native"

    fused = evaluate_run(nrccr_run, split="test", langs=["de"], translate_test_weight=0.5, device="cpu",
                         log=lambda _: None)
    expected = retrieval_metrics(fuse_scores(native, translated, translated_weight=0.5), records.text_to_media)
    assert fused["de"] == pytest.approx(expected, abs=1e-6)
    assert expected != default["de"]  # the translations did count
    block = json.loads((nrccr_run / "eval" / "test.de.json").read_text())["protocol"]
    assert block["queries"] == "native+xx->en MT" and block["translate_test_weight"] == 0.5
    named = evaluate_run(nrccr_run, split="test", langs=["de"], translate_test_weight=0.5, mt_model="synth-mt",
                         device="cpu", log=lambda _: None)
    assert named["de"] == pytest.approx(fused["de"])  # the only translation model, named
    with pytest.raises(CcrError, match="--mt-model 'nope': no English translations of the queries from it"):
        evaluate_run(nrccr_run, split="test", langs=["de"], translate_test_weight=0.5, mt_model="nope",
                     log=lambda _: None)


def test_validation_weighs_native_queries_0_8_as_nrccr_validate_py(nrccr_run, synth_corpus):
    """NRCCR's validate.py: 0.2 x (xx->en MT query scores) + 0.8 x (native), each min-max scaled."""
    run = json.loads((nrccr_run / "run.json").read_text())
    assert run["config"]["train"]["val_translate_test_weight"] == 0.2 and run["config"]["train"]["plateau_halving"] == 3
    best = history(nrccr_run)[run["best_epoch"] - 1]["val"]["de"]
    native, translated, records = _native_and_translated(nrccr_run, synth_corpus, "val")
    nrccr = retrieval_metrics(0.8 * _min_max(native) + 0.2 * _min_max(translated), records.text_to_media)
    inverted = retrieval_metrics(0.2 * _min_max(native) + 0.8 * _min_max(translated), records.text_to_media)
    assert best == pytest.approx(nrccr, abs=1e-6)
    assert nrccr != pytest.approx(inverted, abs=1e-6)  # the corpus tells the two mixes apart


def test_the_discriminator_is_stepped_by_its_own_optimizer(nrccr_run):
    state = load_checkpoint(nrccr_run / "checkpoints" / "last.pt")
    discriminator = [k for k in state["model"] if ".discriminator." in k]
    assert len(discriminator) == 6  # three linear layers
    (aux,) = state["aux"]
    assert len(aux["state"]) == 6 and aux["param_groups"][0]["lr"] == 1e-3  # Adam state for every tensor
    main = sum(len(g["params"]) for g in state["optimizer"]["param_groups"])
    method, _ = build("nrccr")
    assert main == sum(p.requires_grad for p in method.parameters()) - 6


def test_teacher_is_english_attending_to_mt_tokens_and_ignores_padding():
    method, tokenizer = build("nrccr")
    method.eval()  # no dropout: outputs must be comparable
    b = batch(tokenizer)
    with torch.no_grad():
        out = method.embed(b)
    n, le, lt = len(b["weight"]), b["en"]["input_ids"].shape[1], b["mt"]["input_ids"].shape[1]
    assert out["tok_cross"].shape == (n, le + lt, method.text.encoder.config.hidden_size)
    assert torch.equal(out["mask_cross"], torch.cat([out["mask_e"], out["mask_t"]], dim=1))
    assert not out["mask_t"].all() and not out["mask_e"].all()  # both sides are padded somewhere
    assert out["cross"].shape == out["t"].shape and torch.allclose(out["cross"].norm(dim=-1), torch.ones(n))
    assert not torch.allclose(out["cross"], out["t"])

    tok_t = out["tok_t"].masked_fill(~out["mask_t"].unsqueeze(-1), 5.0)  # garbage on padded MT positions
    tok_e = out["tok_e"].masked_fill(~out["mask_e"].unsqueeze(-1), 5.0)  # and on padded English queries
    with torch.no_grad():
        tokens, mask = method.teacher(tok_e, out["mask_e"], tok_t, out["mask_t"])
        cross = method.text.mapping(masked_mean(tokens, mask))
        english_changed, _ = method.teacher(out["tok_e"].flip(0), out["mask_e"].flip(0), out["tok_t"], out["mask_t"])
    assert torch.allclose(cross, out["cross"], atol=1e-6)
    assert not torch.allclose(english_changed[:, :le], out["tok_cross"][:, :le])  # the queries matter

    with pytest.raises(CcrError, match="teacher_heads=3 must divide"):
        build("nrccr", teacher_heads=3)


def test_discriminator_learns_from_detached_states_and_the_generator_term_reaches_the_text_tower():
    method, tokenizer = build("nrccr")
    result = method(batch(tokenizer), STEP)
    assert set(result.terms) == {"ve", "vt", "eb", "sim", "feat", "adv"} and result.terms["adv"].weight == 0.001
    (aux,) = method.aux_objectives()
    assert aux.lr == 1e-3 and {id(p) for p in aux.module.parameters()}.isdisjoint(
        id(p) for p in optim.main_parameters(method, [aux]))
    detached = {k: v.detach() for k, v in result.outputs.items()}
    aux.loss(detached, {}, STEP).backward()
    assert all(p.grad is not None for p in aux.module.parameters())
    assert all(p.grad is None for p in method.text.parameters())
    result.terms["adv"].value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.text.encoder.parameters())


def test_discriminator_and_back_translation_can_be_switched_off():
    method, tokenizer = build("nrccr", discriminator=False, w_bt=0)
    assert method.aux_objectives() == [] and type(method).needed_keys(method.cfg) == frozenset({"en", "mt"})
    b = batch(tokenizer)
    del b["bt"]
    assert set(method(b, STEP).terms) == {"ve", "vt", "sim", "feat"}
