"""LECCR learns a synthetic corpus with MLLM descriptions; its slots, gallery side and score fusion work.

Corpus: ``ccr.testing.synthetic`` with ``descriptions=True``: the trainer tests' design (32 concepts,
each a random feature vector and an English and a German word; an item's features are the sum of
its two concepts' vectors plus noise; German test captions use other templates on unseen concept
pairs) plus one description per item of every split, one English sentence per concept ("in this
image there is snow . next to it we see bird ."), which the gallery reads at test time as LECCR's
does. LECCR's slots interact with visual tokens, so items have token features here: four frames,
each the item's signal with its own noise (``frames=4``). Chance SumR on the 40 test items is about
80; the untrained model scores near it and five epochs of the tiny towers score several times more.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from methods_helpers_nc import (
    MEDIA_DIM,
    STEP,
    build,
    history,
    train_run,
    trained_and_untrained_sumr,
)
from train_helpers import load_checkpoint, sets
from typer.testing import CliRunner

import ccr.train
from ccr.caption.slots import STAGE, SlotsConfig
from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.models import resolve
from ccr.stages.runner import RunOptions, run_stage
from ccr.testing.synthetic import write_synthetic_corpus
from ccr.train.config import resolve_configs
from ccr.train.data.batching import media_batch
from ccr.train.data.media import open_slots
from ccr.train.data.rows import descriptions, eval_records
from ccr.train.data.tokens import tokenize
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.metrics import retrieval_metrics
from ccr.train.model.image_encoder import load_encoder
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.leccr import LeccrConfig, best_slot, slot_overlap
from ccr.train.model.scores import minmax
from ccr.train.model.towers import load_text_encoder
from ccr.train.run.loop import train
from ccr.train.run.trained import instantiate

TERMS = {"ve", "vt", "et", "soft", "slot", "cv", "reg", "loss"}
TOKENS = 4  # visual tokens (frames) per item
# LECCR pools mBERT's CLS token; the tiny random BERT's CLS state is untrained and learns the corpus
# far more slowly than its mean (SumR about 90 against 390 after five epochs), so training here pools the mean
MEAN = {"text_pooling": "mean"}


@pytest.fixture(scope="module")
def described_corpus(tmp_path_factory):
    return write_synthetic_corpus(tmp_path_factory.mktemp("described"), descriptions=True, frames=TOKENS)


@pytest.fixture(scope="module")
def leccr_run(tmp_path_factory, described_corpus):
    return train_run(tmp_path_factory, described_corpus, "leccr", epochs=5, **MEAN)


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
    """K = 4 slots from two-sentence descriptions: every item has two real slots and two fillers."""
    corpus = write_synthetic_corpus(tmp_path / "synth", descriptions=True, frames=TOKENS)
    with pytest.raises(CcrError, match="run ccr slots"):
        train(corpus, tmp_path / "none", method="leccr", sets=sets(slots="corpus"), log=lambda _: None)
    run_stage(Corpus.open(corpus), STAGE, SlotsConfig(k=4, embedder="tiny/minilm"), RunOptions(progress=False))
    vectors = open_slots(Corpus.open(corpus), "auto").get("s00000")
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1, atol=1e-2) and not vectors[2:].any()  # fillers: 0
    out = tmp_path / "run"
    result = train(corpus, out, method="leccr", sets=sets(epochs=3, slots="corpus", **MEAN), log=lambda _: None)
    assert result.best_value > 200  # chance is about 80
    state = load_checkpoint(out / "checkpoints" / "best.pt")
    assert state["env"]["slots"] == "slots-k4-minilm" and "queries" not in state["model"]
    model = ccr.train.load(out)
    records = eval_records(Corpus.open(corpus), "test", "de")
    sim = model.encode_text(records.queries) @ model.encode_media(records.gallery).T
    evaluated = evaluate_run(out, split="test", langs=["de"], device="cpu", log=lambda _: None)["de"]
    assert retrieval_metrics(sim, records.text_to_media) == pytest.approx(evaluated, abs=1e-6)


def test_leccr_trains_with_its_own_defaults():
    """reference/ccr_methods.md §2.5: AdamW 1e-5 (wd 0.01, betas 0.9/0.98), 10% warm-up then linear, CLS, 256-d."""
    train_cfg, _ = resolve_configs("leccr", LeccrConfig)
    assert (train_cfg.lr, train_cfg.weight_decay, train_cfg.betas) == (1e-5, 0.01, [0.9, 0.98])
    assert (train_cfg.warmup, train_cfg.schedule, train_cfg.epoch_decay) == (0.1, "linear", 1.0)
    assert (train_cfg.text_pooling, train_cfg.embed_dim, train_cfg.media_hidden) == ("cls", 256, 512)
    assert (train_cfg.max_tokens, train_cfg.image_size) == (200, 384)
    assert resolve_configs("leccr", LeccrConfig, sets=["lr=0.001"])[0].lr == 1e-3  # still overridable
    assert resolve_configs("baseline", get_method("baseline").Config)[0].text_pooling == "mean"  # NRCCR's stays


def test_single_token_features_are_refused_in_one_line_unless_allowed(tmp_path):
    corpus = write_synthetic_corpus(tmp_path / "pooled", descriptions=True)  # one vector per image
    args = ["train", str(corpus), "--method", "leccr", "--lang", "de",
            *[a for s in sets(epochs=1, **MEAN) for a in ("--set", s)]]
    runner = CliRunner()
    refused = runner.invoke(app, [*args, "--out", str(tmp_path / "a")], env={"COLUMNS": "300"})
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert not (tmp_path / "a").exists(), "refused before the run directory is written"
    lines = [x for x in refused.output.strip().splitlines() if not x.startswith("loading ")]
    assert len(lines) == 1, refused.output
    line = lines[0]
    assert "leccr: the visual input synthetic-concepts has one vector per item" in line
    assert "--set image_encoder=" in line and "--set allow_single_token=true" in line
    allowed = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--set", "allow_single_token=true"])
    assert allowed.exit_code == 0, allowed.output


def test_the_visual_embedding_is_the_enhanced_cls_token_of_the_fine_tuned_clip(tmp_path):
    cls = get_method("leccr")
    train_cfg, method_cfg = resolve_configs("leccr", cls.Config, sets=sets(image_encoder="tiny/clip", image_size=48))
    clip = load_encoder(train_cfg, tmp_path, pretrained=True, save=False)
    encoder, tokenizer = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    method = instantiate(cls, train_cfg, method_cfg, encoder=encoder, image_encoder=clip.encoder,
                         env={"media_dim": 3 * 48 * 48, "langs": ["de"], "n_train": 0})
    method.eval()
    batch = _described_batch(tokenizer, 2) | {"media": torch.randn(2, 2, 3 * 48 * 48),
                                              "media_mask": torch.tensor([[True, True], [True, False]])}
    with torch.no_grad():
        v = method.embed_media(batch)["v"]
        tokens, mask = method.media.encoder(batch["media"], batch["media_mask"])
        slots, slot_mask = method.semantic_slots(batch)
        enhanced = method.enhance(method.media.tower.head(tokens, mask), slots, slot_mask)
    n = clip.encoder.tokens_per_frame
    assert method.frame_tokens == n and tokens.shape[1] == 2 * n
    cls_tokens = torch.stack([(enhanced[0, 0] + enhanced[0, n]) / 2, enhanced[1, 0]])  # mean over real frames
    assert torch.allclose(v, method.media.tower.mapping(cls_tokens), atol=1e-5)
    assert not torch.allclose(v, method.media.tower.mapping(enhanced[:, :n].mean(1)), atol=1e-3)  # not every token


def test_filler_slots_take_no_part_in_attention_matching_or_the_gallery_score():
    """Two items with two real slots each, given once as they are and once padded with the two zero
    filler slots ``ccr slots`` adds at K = 4 (``SlotSource``): every output must be the same."""
    cls = get_method("leccr")
    train_cfg, method_cfg = resolve_configs("leccr", cls.Config, sets=sets(slots="corpus", slot_fusion=0.1))
    encoder, _ = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    method = instantiate(cls, train_cfg, method_cfg, encoder=encoder,
                         env={"media_dim": MEDIA_DIM, "langs": ["de"], "n_train": 0, "slot_dim": 8})
    method.eval()
    g = torch.Generator().manual_seed(0)
    real = F.normalize(torch.randn(2, 2, 8, generator=g), dim=-1)
    media = {"media": torch.randn(2, 3, MEDIA_DIM, generator=g), "media_mask": torch.ones(2, 3, dtype=torch.bool)}
    short = media | {"slots": real, "slots_mask": torch.ones(2, 2, dtype=torch.bool)}
    padded = media | {"slots": torch.cat([real, torch.zeros(2, 2, 8)], dim=1),
                      "slots_mask": torch.ones(2, 4, dtype=torch.bool)}
    with torch.no_grad():
        a, b = method.embed_media(padded), method.embed_media(short)
        queries = {"emb": F.normalize(torch.randn(3, train_cfg.embed_dim, generator=g), dim=-1)}
        scores = [method.score(queries, method.encode_gallery(x)) for x in (padded, short)]
    assert a["mask_slots"].tolist() == [[True, True, False, False]] * 2
    assert torch.allclose(a["v"], b["v"], atol=1e-6) and torch.allclose(a["z"][:, :2], b["z"], atol=1e-6)
    assert torch.allclose(best_slot(a["z"], queries["emb"], a["mask_slots"]), best_slot(b["z"], queries["emb"]))
    assert slot_overlap(a["slots"], a["mask_slots"]).item() == pytest.approx(slot_overlap(b["slots"], b["mask_slots"]).item())
    assert torch.allclose(scores[0], scores[1], atol=1e-6)
