"""``ccr train --method rgtr``: Region-Guided TRansformer for (cross-lingual) temporal sentence grounding.

A ``GroundingMethod``: the shared loop, checkpoints, resume, JSONL metrics and model selection
host it unchanged, and its task (``ccr.train.tasks.grounding``) brings the data (queries with
moments over clip features), the validation and ``ccr evaluate`` (grounding metrics, a
predictions file). The text tower is the trainer's (mBERT by default, so queries in any
language; the tiny BERT in tests), the video side
reads per-clip features of the corpus's feature store (``...-clips2s``, or imported QVHighlights
npz). Defaults: the DETR-family values verified in Moment-DETR / QD-DETR code, RGTR's own where
its abstract states them, proposals where it is silent (reference/video_methods.md §2.3-2.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from ccr.errors import CcrError
from ccr.train.config import MethodConfig, arch_field
from ccr.train.model.grounding.criterion import SetCriterion
from ccr.train.model.grounding.model import Grounder, TextStates
from ccr.train.model.grounding.spans import kmeans_anchors
from ccr.train.model.methods.base import BuildEnv, GroundingMethod, LossPlugin, Outputs
from ccr.train.ranges import BELOW_ONE, COUNT, NON_NEGATIVE, SHARE, Range

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig


@dataclass
class Config(MethodConfig):
    train_defaults: ClassVar[dict[str, Any]] = {
        "select_metric": "MR-full-mAP",  # Moment-DETR/QD-DETR select on val MR-full mAP avg
        "batch_size": 32, "epochs": 200, "lr": 1e-4, "weight_decay": 1e-4,  # family (§2.4)
        "grad_clip": 0.1, "dropout": 0.1, "max_frames": 75, "max_tokens": 32,  # family: 75 clips, 32 tokens
        "epoch_decay": 1.0,  # QVHighlights: no lr drop
        "patience": 0,  # the family trains all epochs and keeps the best
    }
    # --- model ------------------------------------------------------------------------------
    num_queries: int = arch_field(10)  # anchor pairs = moment queries (family: 10; RGTR's K unpublished)
    hidden: int = arch_field(256)  # family: 256
    heads: int = arch_field(8)  # family: 8
    ffn: int = arch_field(1024)  # family: 1024
    enc_layers: int = arch_field(2)  # text-to-video encoder layers (QD-DETR: 2 T2V)
    dec_layers: int = arch_field(2)  # decoder layers (Moment-DETR: 2)
    input_dropout: float = 0.5  # on the input projections (family: 0.5)
    region_attention: float = 2.0  # Gaussian prior -g((t-c)/w)^2 on a query's cross-attention; 0 = off (proposal)
    freeze_text: bool = True  # text tower as a fixed feature extractor (family: frozen CLIP text features)
    normalize_video: bool = True  # L2-normalise each clip feature (family: per source)
    clip_length: float = 0.0  # seconds per feature step; 0 = the feature set's clipsNs variant, else 2 (Charades: 1)
    max_windows: int = 5  # ground-truth moments used per training query (family: 5)
    queries: Literal["auto", "human", "mt"] = "auto"  # non-English query rows: human if any (auto), else MT
    # --- matching and losses (family: 10 / 1 / 4, background weight 0.1) ----------------------
    cost_l1: float = 10.0
    cost_giou: float = 1.0
    cost_class: float = 4.0
    cost_region: float = 1.0  # 1 - IoU(static anchor, moment): a moment goes to its region's query (proposal)
    l1_weight: float = 10.0
    giou_weight: float = 1.0
    class_weight: float = 4.0
    bg_weight: float = 0.1
    iou_weight: float = 1.0  # IoU-aware head (proposal: BCE to the span's IoU)
    saliency_weight: float = 1.0  # family: 1 on QVHighlights, 4 on Charades-STA / TACoS
    saliency_margin: float = 0.2  # Moment-DETR's hinge margin
    aux_loss: bool = True  # losses at every decoder layer
    # --- inference --------------------------------------------------------------------------
    iou_alpha: float = 0.5  # ranking score = p(fg)^(1-a) * IoU^a (a = 0: classification only)
    nms_threshold: float = 0.0  # > 0: NMS at this IoU on the predicted windows (family default: off)

    loss_weights: ClassVar[tuple[str, ...]] = ("l1_weight", "giou_weight", "class_weight", "iou_weight",
                                               "saliency_weight")
    ranges: ClassVar[dict[str, Range]] = dict.fromkeys(loss_weights, NON_NEGATIVE) | dict.fromkeys(
        ("cost_l1", "cost_giou", "cost_class", "cost_region", "bg_weight", "saliency_margin", "region_attention",
         "clip_length", "enc_layers"), NON_NEGATIVE) | dict.fromkeys(
        ("num_queries", "hidden", "heads", "ffn", "dec_layers", "max_windows"), COUNT) | {
        "input_dropout": BELOW_ONE, "iou_alpha": SHARE, "nms_threshold": SHARE}

    def validate(self, train: TrainConfig) -> None:
        super().validate(train)
        if self.hidden % self.heads or self.hidden % 4:
            raise CcrError(f"hidden={self.hidden} must be divisible by heads={self.heads} and by 4")


class Rgtr(GroundingMethod):
    """Towers: ``text`` gives token states, ``media`` is the grounding network over clips."""

    name = "rgtr"
    proposal = "reference/video_methods.md §2.4"  # no released code
    Config = Config

    def build_text_tower(self, env: BuildEnv) -> nn.Module:
        return TextStates(env.text_encoder, frozen=self.cfg.freeze_text)

    def build_media_tower(self, env: BuildEnv) -> nn.Module:
        c = self.cfg
        return Grounder(env.media_dim, int(env.text_encoder.config.hidden_size), num_queries=c.num_queries,
                        hidden=c.hidden, heads=c.heads, ffn=c.ffn, enc_layers=c.enc_layers, dec_layers=c.dec_layers,
                        dropout=env.train.dropout, input_dropout=c.input_dropout,
                        region_attention=c.region_attention)

    def build_losses(self) -> list[LossPlugin]:
        return [SetCriterion(self.cfg)]

    def embed(self, batch: dict[str, Any]) -> Outputs:
        states, mask = self.text(batch["text"])
        return self.media(batch["video"], batch["video_mask"], states, mask)

    def on_train_start(self, data: Any) -> None:
        """Static anchors = k-means of the training moments (deterministic, so a resume recomputes the same)."""
        anchors = kmeans_anchors(data.all_spans(), self.cfg.num_queries, seed=self.train_cfg.seed)
        self.media.set_anchors(torch.from_numpy(anchors))

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Last-layer ``spans`` [B, K, 2] (centre, width), ranking ``scores`` [B, K], ``saliency`` [B, T]."""
        out = self.embed(batch)
        fg = out["logits"][-1].softmax(-1)[..., 0]
        iou = torch.sigmoid(out["iou"][-1])
        a = self.cfg.iou_alpha
        return {"spans": out["spans"][-1], "scores": fg.pow(1 - a) * iou.pow(a), "saliency": out["saliency"]}

