"""The RIVRL video tower: shapes and masking over variable frame counts, its spaces, concept labels.

And the tower in every retrieval method: each builds with ``video_encoder=rivrl``, takes one
training step on a batch of videos with 1 to 5 frames, and the gradient reaches both branches.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from train_helpers import sets

from ccr.errors import CcrError
from ccr.models import resolve
from ccr.train.config import TrainConfig, resolve_configs
from ccr.train.data.tokens import tokenize
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import StepInfo
from ccr.train.model.methods.rivrl import RivrlConfig
from ccr.train.model.towers import load_text_encoder
from ccr.train.model.video.concepts import caption_words, concept_targets
from ccr.train.model.video.rivrl import (
    JointLatent,
    RivrlTower,
    jaccard,
    segment_mask,
    split_spaces,
)
from ccr.train.run.trained import instantiate

LENGTHS = [1, 2, 3, 7]  # below, at and above the segment window of 3


def _videos(lengths: list[int], dim: int, pad_to: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    feats = torch.zeros(len(lengths), pad_to, dim)
    mask = torch.zeros(len(lengths), pad_to, dtype=torch.bool)
    for k, n in enumerate(lengths):
        feats[k, :n] = torch.randn(n, dim, generator=g)
        mask[k, :n] = True
    return feats, mask


def test_a_padded_video_embeds_as_it_does_alone():
    tower = RivrlTower(8, TrainConfig(video_encoder="rivrl", media_hidden=16, embed_dim=12), concepts=5).eval()
    feats, mask = _videos(LENGTHS, 8, max(LENGTHS))
    with torch.no_grad():
        out = tower(feats, mask)
        reading = tower.read(feats, mask)
        assert out.emb.shape == (4, 12) and torch.allclose(out.emb.norm(dim=-1), torch.ones(4))
        assert out.tokens.shape == (4, 7, 16) and out.tokens[~mask].abs().sum() == 0
        assert reading.preview.shape == (4, 8) and reading.intensive.shape == (4, 32)
        assert tower.concept_logits(reading).shape == (4, 2, 5)
        longer = tower(*(torch.cat([x, torch.zeros_like(x[:, :3])], dim=1) for x in (feats, mask))).emb
        assert torch.allclose(longer, out.emb, atol=1e-5)  # more padding changes nothing
        for k, n in enumerate(LENGTHS):
            alone = tower(feats[k:k + 1, :n], mask[k:k + 1, :n]).emb
            assert torch.allclose(alone, out.emb[k:k + 1], atol=1e-5), n
        junk = feats.clone()
        junk[~mask] = 100.0  # padded frames are never read
        assert torch.allclose(tower(junk, mask).emb, out.emb, atol=1e-5)


def test_segment_windows_follow_the_frame_count():
    lengths = [1, 2, 3, 4, 5, 7, 8]
    mask = torch.arange(8)[None] < torch.tensor(lengths)[:, None]
    # windows of 3 frames at stride 2 that fit: floor((n - 3) / 2) + 1, and one for a video shorter than a window
    assert segment_mask(mask, 3).sum(dim=1).tolist() == [1, 1, 1, 1, 2, 3, 3]


def test_joint_latent_scores_average_the_two_cosines_and_jaccard_is_min_over_max():
    torch.manual_seed(0)
    video, text = JointLatent(6, 10, 8, dropout=0.0).eval(), JointLatent(6, 6, 8, dropout=0.0).eval()
    a, b = video(torch.randn(5, 6), torch.randn(5, 10)), text(torch.randn(3, 6))  # text: one input for both heads
    assert torch.allclose(a.norm(dim=-1), torch.ones(5)) and a.shape == (5, 8)
    sa, sb = split_spaces(a), split_spaces(b)
    cosines = [F.normalize(sa[:, s], dim=-1) @ F.normalize(sb[:, s], dim=-1).T for s in range(2)]
    assert torch.allclose(a @ b.T, (cosines[0] + cosines[1]) / 2, atol=1e-6)
    x, y = torch.rand(4, 7), torch.rand(3, 7)
    naive = torch.minimum(x[:, None], y[None]).sum(-1) / torch.maximum(x[:, None], y[None]).sum(-1)
    assert torch.allclose(jaccard(x, y), naive, atol=1e-6) and torch.allclose(jaccard(x, x).diagonal(), torch.ones(4))
    with pytest.raises(CcrError, match="embed_dim=7 even"):  # the tower checks the rule its config checks
        RivrlTower(6, TrainConfig(video_encoder="rivrl", media_hidden=8, embed_dim=7))


def test_concept_targets_keep_words_repeated_within_a_video():
    assert caption_words("A man is riding a horse on the beach.") == ["man", "riding", "horse", "beach"]
    captions = [
        ["a dog runs on the beach", "the dog plays on a beach", "a dog and a ball"],  # dog 3, beach 2, ball 1
        ["a man rides a horse", "a man on a horse", "a man waves"],  # man 3, horse 2
        ["a cat sleeps", "a bird sings"],  # nothing repeats: no labels
    ]
    vocabulary, targets = concept_targets(captions, size=4)
    assert vocabulary == ["dog", "man", "beach", "horse"]  # by total count, ties alphabetical; "ball" once only
    assert targets.ravel().tolist() == pytest.approx([1, 0, 2 / 3, 0, 0, 1, 0, 2 / 3, 0, 0, 0, 0])
    assert concept_targets(captions, size=2, min_count=1)[0] == ["dog", "man"]


def test_rivrl_defaults_are_the_papers_and_the_pool_tower_is_refused():
    train, method = resolve_configs("rivrl", RivrlConfig)
    assert (train.lang, train.video_encoder, train.media_hidden, train.embed_dim) == (["en"], "rivrl", 2048, 2048)
    assert (train.lr, train.batch_size, train.epochs, train.grad_clip, train.max_frames) == (1e-4, 128, 50, 2.0, 64)
    assert (method.concepts, method.margin, method.concept_margin, method.latent_share) == (512, 0.2, 0.2, 0.6)
    assert resolve_configs("rivrl", RivrlConfig, sets=["embed_dim=64"])[0].embed_dim == 64  # still overridable
    assert resolve_configs("baseline", get_method("baseline").Config)[0].video_encoder == "pool"
    with pytest.raises(CcrError, match="drop video_encoder=pool"):
        _build("rivrl", video_encoder="pool")


def _build(method: str, **options: object) -> tuple[torch.nn.Module, object]:
    cls = get_method(method)
    train_cfg, method_cfg = resolve_configs(method, cls.Config, sets=sets(**options))
    encoder, tokenizer = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    env = {"media_dim": 8, "langs": ["de"], "n_train": 4}
    return instantiate(cls, train_cfg, method_cfg, encoder=encoder, env=env), tokenizer


@pytest.mark.parametrize("method", ["baseline", "nrccr", "cl2cm", "dcot", "leccr", "rivrl"])
def test_every_method_trains_the_rivrl_tower(method):
    model, tokenizer = _build(method, video_encoder="rivrl", **({"concepts": 6} if method == "rivrl" else {}))
    feats, mask = _videos([1, 3, 5, 2], 8, 5)
    captions = ["red dog", "blue cat and green horse", "white bird", "black fish and a cow"]
    batch = {"media": feats, "media_mask": mask, "media_index": torch.arange(4), "index": torch.arange(4),
             "lang": torch.zeros(4, dtype=torch.long), "weight": torch.ones(4),
             **{key: tokenize(tokenizer, captions[::step], 16) for key, step in (("en", 1), ("mt", -1), ("bt", 1))},
             "descriptions": tokenize(tokenizer, [f"in this image there is {c} ." for c in captions], 24)}
    if method == "rivrl":
        model.objectives[0].targets = torch.rand(4, 6)
    result = model(batch, StepInfo(epoch=1, step=0, total_steps=10, steps_per_epoch=10))
    result.total().backward()
    assert all(math.isfinite(float(t.value.detach())) for t in result.terms.values())
    for name in ("gru.weight_ih_l0_reverse", "segments.weight", "attention.query.weight", "latent.a.linear.weight"):
        grad = model.media.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name  # both branches learn from every method's loss
    model.eval()
    with torch.no_grad():
        scores = model.score(model.encode_queries({"text": batch["en"], "lang": "en"}), model.encode_gallery(batch))
    assert scores.shape == (4, 4) and torch.isfinite(scores).all()
