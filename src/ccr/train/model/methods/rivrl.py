"""``rivrl``: RIVRL's English text-to-video setting (TCSVT 2022), reference/video_methods.md §1.

The video tower is ``ccr.train.model.video.rivrl`` (previewing + preview-aware intensive reading) with
both of its hybrid common spaces per branch: latent (cosine) and concept (sigmoid, generalised
Jaccard); the text side has a matching latent and concept head per branch over the text tower's
sentence vector. Losses, summed per batch as in the released code::

    L = Σ_branch tri_cos(e, v) + Σ_branch tri_jac(c_e, c_v) + B · Σ_branch (BCE(c_v, y) + BCE(c_e, y))

``tri`` is the hardest-negative triplet in both directions (margin 0.2, summed), ``y`` the
video's soft concept target mined from its English training captions (``ccr.train.model.video.concepts``)
and ``B`` the batch size. Retrieval score: each of the four caption x video matrices min-max
scaled over the whole matrix, then ``0.6 (latent sum) + 0.4 (concept sum)``. ``ccr.train.load``'s
``encode_text`` / ``encode_media`` give the joint latent vectors (the latent-only score).

The method's defaults for shared options (``train_defaults``) are RIVRL's: English queries
(``lang en``), the RIVRL tower at its widths (``media_hidden`` 2048: GRU 512 per direction, PaA
query/key 512, FFN 4096; ``embed_dim`` 2048: two 1024-d latent spaces). The trainer's defaults
already match the rest (Adam lr 1e-4, batch 128, 50 epochs, clip 2, dropout 0.2, lr x 0.99 per
epoch, early stop after 10 epochs, selection on both directions' SumR, 64 frames).

Where ours differs from the released code: the text side is the trainer's text tower (mBERT by
default, any encoder by ``text_tower``), not Dual Encoding's bag-of-words + word2vec-biGRU + CNN;
the concept words skip POS tagging and lemmatising (see ``concepts``). The original trainer's "halve
the learning rate after an epoch without improvement, at most once every 3 epochs" rule is the
trainer's ``plateau_halving`` (3 in ``train_defaults``). Corpus weights are not read: English captions
are human.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from ccr.errors import CcrError
from ccr.train.config import MethodConfig, arch_field
from ccr.train.model.losses import positives, triplet_hardest
from ccr.train.model.methods.base import (
    LossPlugin,
    LossTerm,
    Outputs,
    RetrievalMethod,
    StepInfo,
)
from ccr.train.model.scores import minmax
from ccr.train.model.video.concepts import concept_targets
from ccr.train.model.video.rivrl import ConceptHeads, RivrlTower, jaccard, split_spaces
from ccr.train.ranges import COUNT, NON_NEGATIVE, SHARE, Range
from ccr.train.run.distributed import gather

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig
    from ccr.train.data.batching import Batch, TrainData
    from ccr.train.model.methods.base import BuildEnv


@dataclass
class RivrlConfig(MethodConfig):
    train_defaults: ClassVar[dict[str, Any]] = {"lang": ["en"], "video_encoder": "rivrl", "media_hidden": 2048,
                                                "embed_dim": 2048, "plateau_halving": 3}
    concepts: int = arch_field(512)  # concept vocabulary size (tag_vocab_512)
    concept_min_count: int = 2  # a word labels a video from this many occurrences in its captions (th4vl=1; TGIF: 1)
    margin: float = 0.2  # latent-space triplet margin (margin)
    concept_margin: float = 0.2  # concept-space (Jaccard) triplet margin (margin_2)
    w_latent: float = 1.0  # triplets in the two latent spaces
    w_concept: float = 1.0  # triplets in the two concept spaces
    w_bce: float = 1.0  # concept BCE of video and text, both branches, times the batch size
    latent_share: float = 0.6  # retrieval: latent spaces' share of the fused score (the rest: concept spaces)

    loss_weights: ClassVar[tuple[str, ...]] = ("w_latent", "w_concept", "w_bce")
    ranges: ClassVar[dict[str, Range]] = dict.fromkeys(loss_weights, NON_NEGATIVE) | {
        "concepts": COUNT, "concept_min_count": COUNT, "margin": NON_NEGATIVE, "concept_margin": NON_NEGATIVE,
        "latent_share": SHARE}

    def validate(self, train: TrainConfig) -> None:
        """The method's concept spaces live in RIVRL's tower, so no other tower will do."""
        super().validate(train)
        if train.video_encoder != "rivrl":
            raise CcrError("--method rivrl is RIVRL's own video tower; drop video_encoder=pool (or set it to rivrl)")


class RivrlObjective(LossPlugin):
    """RIVRL's hybrid-space losses, with the training videos' concept targets.

    The targets are a plain attribute, not a buffer: they are mined again at every (re)start, and
    DDP would otherwise broadcast the whole table at every step.
    """

    def __init__(self, cfg: RivrlConfig):
        super().__init__()
        self.cfg = cfg
        self.targets: torch.Tensor | None = None  # (n_media, concepts), row = media_index; set by on_train_start

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        cfg = self.cfg
        groups = gather(batch["media_index"])
        if self.targets is None:
            raise ValueError("rivrl: concept targets are set in on_train_start; call it before training")
        pos = positives(groups)
        e, v = split_spaces(gather(outputs["e"])), split_spaces(gather(outputs["v"]))
        logits_e, logits_v = gather(outputs["concept_e"]), gather(outputs["concept_v"])
        c_e, c_v = logits_e.sigmoid(), logits_v.sigmoid()
        latent = sum(triplet_hardest(e[:, s] @ v[:, s].T, pos, margin=cfg.margin) for s in range(2))
        concept = sum(triplet_hardest(jaccard(c_e[:, s].float(), c_v[:, s].float()), pos, margin=cfg.concept_margin)
                      for s in range(2))
        target = self.targets.to(groups.device)[groups].unsqueeze(1).expand(-1, 2, -1).to(logits_v.dtype)
        n = len(groups)
        return {
            "latent": LossTerm(latent, cfg.w_latent),
            "concept": LossTerm(concept, cfg.w_concept),
            # mean over elements, per branch, summed over branches: nn.BCELoss as the original uses it
            "bce_video": LossTerm(2 * n * F.binary_cross_entropy_with_logits(logits_v, target), cfg.w_bce),
            "bce_text": LossTerm(2 * n * F.binary_cross_entropy_with_logits(logits_e, target), cfg.w_bce),
        }


class Rivrl(RetrievalMethod):
    name = "rivrl"
    Config = RivrlConfig
    data_keys = frozenset({"en"})

    def __init__(self, cfg: RivrlConfig, env: BuildEnv):
        if not 0.0 <= cfg.latent_share <= 1.0:
            raise CcrError(f"rivrl: latent_share {cfg.latent_share} must be a share in [0, 1]")
        super().__init__(cfg, env)
        hidden = self.text.encoder.config.hidden_size
        self.text_concepts = ConceptHeads(hidden, hidden, cfg.concepts)

    def build_media_tower(self, env: BuildEnv) -> torch.nn.Module:
        return RivrlTower(env.media_dim, env.train, concepts=self.cfg.concepts)

    def build_losses(self) -> list[LossPlugin]:
        return [RivrlObjective(self.cfg)]

    def on_train_start(self, data: TrainData) -> None:
        """Mine the concept targets of the training videos from their English captions."""
        per_item: list[set[str]] = [set() for _ in data.media_ids]
        for group, text in zip(data.media_index.tolist(), data.records.texts["en"], strict=True):
            per_item[group].add(text)
        _, targets = concept_targets([sorted(t) for t in per_item], size=self.cfg.concepts,
                                     min_count=self.cfg.concept_min_count)
        self.objectives[0].targets = torch.from_numpy(targets).to(next(self.parameters()).device)

    def embed_media(self, batch: Batch) -> Outputs:
        reading = self.media.read(batch["media"], batch["media_mask"])
        return {"v": self.media.latent(reading.preview, reading.intensive),
                "concept_v": self.media.concept_logits(reading), "tok_v": reading.tokens, "mask_v": reading.mask}

    def embed_text(self, tokens: dict[str, torch.Tensor]) -> Outputs:
        pooled, states, mask = self.text.encode(tokens)
        return {"e": self.text.mapping(pooled), "concept_e": self.text_concepts(pooled), "tok_e": states,
                "mask_e": mask}

    def embed(self, batch: Batch) -> Outputs:
        return self.embed_media(batch) | self.embed_text(batch["en"])

    def encode_queries(self, batch: Batch) -> Outputs:
        out = self.embed_text(batch["text"])
        return {"emb": out["e"], "concepts": out["concept_e"].sigmoid()}

    def encode_gallery(self, batch: Batch) -> Outputs:
        out = self.embed_media(batch)
        return {"emb": out["v"], "concepts": out["concept_v"].sigmoid()}

    def score(self, queries: Outputs, gallery: Outputs) -> torch.Tensor:
        """RIVRL's fusion of the four spaces, each matrix min-max scaled as a whole."""
        q, g = split_spaces(queries["emb"].float()), split_spaces(gallery["emb"].float())
        qc, gc = queries["concepts"].float(), gallery["concepts"].float()
        share = self.cfg.latent_share
        total = torch.zeros(len(q), len(g), device=q.device)
        for s in range(2):
            total += share * minmax(q[:, s] @ g[:, s].T) + (1.0 - share) * minmax(jaccard(qc[:, s], gc[:, s]))
        return total
