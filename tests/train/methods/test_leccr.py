"""LECCR learns a synthetic corpus with MLLM descriptions; its slots, gallery side and score fusion work.

Corpus: ``ccr.train.synthetic`` with ``descriptions=True``: the trainer tests' design (32 concepts,
each a random feature vector and an English and a German word; an item's features are the sum of
its two concepts' vectors plus noise; German test captions use other templates on unseen concept
pairs) plus one description per item of every split, one English sentence per concept ("in this
image there is snow . next to it we see bird ."), which the gallery reads at test time as LECCR's
does. Chance SumR on the 40 test items is about 80; the untrained model scores near it and five
epochs of the tiny towers score several times more.
"""

import numpy as np
import pytest
import torch
from methods_helpers_nc import MEDIA_DIM, STEP, build, history, train_run, trained_and_untrained_sumr
from train_helpers import load_checkpoint, sets

import ccr.train
from ccr.caption.slots import STAGE, SlotsConfig
from ccr.errors import CcrError
from ccr.pipeline.corpus import Corpus
from ccr.pipeline.runner import RunOptions, run_stage
from ccr.train.batching import media_batch
from ccr.train.data import descriptions, eval_records
from ccr.train.evaluate import evaluate_run
from ccr.train.loop import train
from ccr.train.methods.leccr import best_slot, minmax
from ccr.train.metrics import retrieval_metrics
from ccr.train.synthetic import write_synthetic_corpus
from ccr.train.tokens import tokenize

TERMS = {"ve", "vt", "et", "soft", "slot", "cv", "reg", "loss"}


@pytest.fixture(scope="module")
def described_corpus(tmp_path_factory):
    return write_synthetic_corpus(tmp_path_factory.mktemp("described"), descriptions=True)


@pytest.fixture(scope="module")
def leccr_run(tmp_path_factory, described_corpus):
    return train_run(tmp_path_factory, described_corpus, "leccr", epochs=5)


def test_leccr_learns_far_above_chance_and_the_untrained_model(leccr_run, described_corpus):
    assert set(history(leccr_run)[-1]["train"]) == TERMS
    trained, untrained = trained_and_untrained_sumr(leccr_run, described_corpus)  # gallery through the Python API
    assert untrained < 150 and trained > 300 and trained > untrained + 150
    evaluated = evaluate_run(leccr_run, split="test", langs=["de"], device="cpu", log=lambda _: None)["de"]["sumr"]
    assert evaluated == pytest.approx(trained)  # ccr evaluate reads the gallery's descriptions the same way


def test_the_gallery_reads_each_items_own_description(leccr_run, described_corpus):
    model = ccr.train.load(leccr_run)
    corpus = Corpus.open(described_corpus)
    ids = eval_records(corpus, "test", "de").gallery[:6]
    own = model.encode_media(ids)
    batch = media_batch(model.source(), ids, 1) | {"media_ids": ids}
    batch["descriptions"] = tokenize(model.tokenizer, descriptions(corpus, ids[1:] + ids[:1]), 128)
    with torch.no_grad():
        model.method.eval()
        others = model.method.encode_gallery(batch)["emb"].numpy()
    assert not np.allclose(own, others, atol=1e-3)  # another item's description changes the embedding
    with pytest.raises(CcrError, match="pass media ids of the corpus"):
        model.encode_media(np.zeros((2, MEDIA_DIM), np.float32))


def _described_batch(tokenizer, n: int = 3) -> dict[str, object]:
    texts = ["in this image there is a dog .", "in this image there is a red car . next to it we see snow .",
             "a cat ."][:n]
    frames = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]][:n]).bool()
    return {"media": torch.randn(n, 3, MEDIA_DIM), "media_mask": frames, "descriptions": tokenize(tokenizer, texts, 32)}


def test_slots_are_distinct_and_ignore_padding():
    method, tokenizer = build("leccr")
    method.eval()
    batch = _described_batch(tokenizer)
    length = int(batch["descriptions"]["attention_mask"][2].sum())
    alone = {"media": batch["media"][2:, :1], "media_mask": batch["media_mask"][2:, :1],
             "descriptions": {k: v[2:, :length] for k, v in batch["descriptions"].items()}}
    with torch.no_grad():
        out, alone = method.embed_media(batch), method.embed_media(alone)
    k, width, dim = method.cfg.n_slots, method.train_cfg.media_hidden, method.train_cfg.embed_dim
    assert out["slots"].shape == (3, k, width) and out["z"].shape == (3, k, dim) and out["v"].shape == (3, dim)
    assert torch.allclose(out["v"].norm(dim=-1), torch.ones(3))
    assert not torch.allclose(out["slots"][:, 0], out["slots"][:, 1], atol=1e-4)  # the queries start apart
    assert length < batch["descriptions"]["input_ids"].shape[1]
    for key in ("v", "slots", "z"):  # padded description tokens and frames change nothing
        assert torch.allclose(out[key][2:], alone[key], atol=1e-5), key


def test_soft_targets_follow_english_and_slots_and_do_not_train_them():
    method, tokenizer = build("leccr")
    outputs = method.embed(_described_batch(tokenizer) | {
        "en": tokenize(tokenizer, ["dog", "red car and snow", "cat"], 32),
        "mt": tokenize(tokenizer, ["Hund", "rot Auto und Schnee", "Katze"], 32)})
    batch = {"media_index": torch.arange(3), "weight": torch.ones(3)}
    terms = method.objectives[0](outputs, batch, STEP)
    assert set(terms) == TERMS - {"loss"} and terms["vt"].weight == 0.5 and terms["soft"].weight == 0.5
    e, t, v, z = (outputs[k] for k in ("e", "t", "v", "z"))
    assert torch.allclose(best_slot(z, e)[0, 2], (z[2] @ e[0]).max())  # rows sentences, columns items
    target = (0.8 * minmax(e @ v.T) + 0.2 * minmax(best_slot(z, e))).softmax(-1).detach()
    p = (t @ v.T).log_softmax(-1)
    assert terms["soft"].value.item() == pytest.approx((target * (target.log() - p)).sum(-1).mean().item(), rel=1e-5)
    grads = torch.autograd.grad(terms["soft"].value, [e, t], allow_unused=True)
    assert grads[0] is None and grads[1].abs().sum() > 0  # the English side is the teacher


def test_slot_score_fusion_mixes_min_max_scaled_scores():
    method, _ = build("leccr", slot_fusion=0.1)
    g = torch.Generator().manual_seed(0)
    queries = {"emb": torch.nn.functional.normalize(torch.randn(5, 64, generator=g), dim=-1)}
    gallery = {"emb": torch.nn.functional.normalize(torch.randn(4, 64, generator=g), dim=-1),
               "slots": torch.randn(4, 2, 64, generator=g)}
    slot = torch.stack([(gallery["slots"][j] @ queries["emb"].T).amax(0) for j in range(4)], dim=1)
    glob = queries["emb"] @ gallery["emb"].T
    scaled = [(x - x.min()) / (x.max() - x.min()) for x in (glob, slot)]
    expected = 0.9 * scaled[0] + 0.1 * scaled[1]
    assert torch.allclose(method.score(queries, gallery), expected, atol=1e-6)
    plain, _ = build("leccr")
    assert torch.equal(plain.score(queries, gallery), glob)  # images: the global score alone


def test_corpus_slots_from_ccr_slots_feed_training_and_the_gallery(tmp_path):
    corpus = write_synthetic_corpus(tmp_path / "synth", descriptions=True)
    with pytest.raises(CcrError, match="run ccr slots"):
        train(corpus, tmp_path / "none", method="leccr", sets=sets(slots="corpus"), log=lambda _: None)
    run_stage(Corpus.open(corpus), STAGE, SlotsConfig(k=2, embedder="tiny/minilm"), RunOptions(progress=False))
    out = tmp_path / "run"
    result = train(corpus, out, method="leccr", sets=sets(epochs=3, slots="corpus"), log=lambda _: None)
    assert result.best_value > 200  # chance is about 80
    state = load_checkpoint(out / "checkpoints" / "best.pt")
    assert state["env"]["slots"] == "slots-k2-minilm" and "queries" not in state["model"]
    model = ccr.train.load(out)
    records = eval_records(Corpus.open(corpus), "test", "de")
    sim = model.encode_text(records.queries) @ model.encode_media(records.gallery).T
    evaluated = evaluate_run(out, split="test", langs=["de"], device="cpu", log=lambda _: None)["de"]
    assert retrieval_metrics(sim, records.text_to_media) == pytest.approx(evaluated, abs=1e-6)
