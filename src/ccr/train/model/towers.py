"""The two towers every method starts from: a Hugging Face text encoder and a visual encoder.

Both return a ``TowerOutput``: the L2-normalised embedding in the common space plus the
token-level states and their mask, because NRCCR's cross-attention, CL2CM's word-level OT and
LECCR's slots all work on tokens (reference/ccr_methods.md §6.2).

``video_encoder`` picks the visual tower from ``ccr.train.model.video.encoders``: ``pool`` (below)
or ``rivrl`` (``ccr.train.model.video.rivrl``). The visual tower also supplies the text tower's mapping
(``text_mapping``), so both sides always land in the same common space, whatever its layout.

The text tower is any ``AutoModel`` encoder (mBERT by default, XLM-R, the tiny BERT in tests),
with the heads the references describe: ``linear`` (pooled state -> projection, LECCR) or
``attention`` (NRCCR: token MLP, learned positions, one self-attention block, mean pooling, then
the projection). The visual tower reads stored features ``[T, D]`` (T = 1 for a pooled image):
a token MLP, optional self-attention blocks over frames, mean or attention pooling, projection.
A CLIP fine-tuned end to end (LECCR; the ``image_encoder`` option) runs in front of the visual
tower and hands it its tokens in place of stored features (``ccr.train.model.image_encoder``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ccr.errors import CcrError
from ccr.train.model.video.encoders import ENCODERS

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig

MAX_TEXT_POSITIONS = 250  # NRCCR's learned positions for the attention head
Refine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (frame states, mask) -> frame states


class TowerOutput(NamedTuple):
    emb: torch.Tensor  # (B, E), L2-normalised
    tokens: torch.Tensor  # (B, L, H) token states
    mask: torch.Tensor  # (B, L) bool, True on real tokens


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class Mapping(nn.Module):
    """Projection into the common space, then L2 normalisation (cosine scores everywhere)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.dropout(self.linear(x)), dim=-1)


class SequenceHead(nn.Module):
    """Token MLP (LayerNorm, dropout, Linear, ReLU) and, with ``layers``, positions + self-attention."""

    def __init__(self, in_dim: int, hidden: int, *, layers: int, dropout: float, max_len: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU())
        self.positions = nn.Embedding(max_len, hidden) if layers else None
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(hidden, nhead=_heads(hidden), dim_feedforward=hidden, dropout=dropout,
                                       batch_first=True)
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.mlp(x)
        if self.positions is not None:
            h = h + self.positions(torch.arange(h.shape[1], device=h.device))[None]
        for block in self.blocks:
            h = block(h, src_key_padding_mask=~mask)
        return h.masked_fill(~mask.unsqueeze(-1), 0.0)


def _heads(hidden: int) -> int:
    return next(h for h in (8, 4, 2, 1) if hidden % h == 0)


class AttentionPool(nn.Module):
    """A learned weighting of frames: softmax over ``w^T tanh(W x_t)`` on real frames only."""

    def __init__(self, hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        return (scores.softmax(dim=1).unsqueeze(-1) * x).sum(dim=1)


class TextTower(nn.Module):
    def __init__(self, encoder: nn.Module, cfg: TrainConfig):
        super().__init__()
        self.encoder = encoder
        freeze_bottom(encoder, cfg.text_frozen_layers)
        hidden = encoder.config.hidden_size
        self.pooling = cfg.text_pooling
        self.head = None
        if cfg.text_head == "attention":
            self.head = SequenceHead(hidden, hidden, layers=1, dropout=cfg.dropout, max_len=MAX_TEXT_POSITIONS)
        self.mapping = media_tower_class(cfg).text_mapping(hidden, cfg)

    def encode(self, tokens: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled sentence vector, token states, mask) before the mapping, for heads of a method's own."""
        mask = tokens["attention_mask"].bool()
        states = self.encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
        if self.head is not None:
            states = self.head(states[:, :MAX_TEXT_POSITIONS], mask[:, :MAX_TEXT_POSITIONS])
            mask = mask[:, :MAX_TEXT_POSITIONS]
        pooled = states[:, 0] if self.pooling == "cls" else masked_mean(states, mask)
        return pooled, states, mask

    def forward(self, tokens: dict[str, torch.Tensor]) -> TowerOutput:
        pooled, states, mask = self.encode(tokens)
        return TowerOutput(self.mapping(pooled), states, mask)


class MediaTower(nn.Module):
    def __init__(self, in_dim: int, cfg: TrainConfig):
        super().__init__()
        self.head = SequenceHead(in_dim, cfg.media_hidden, layers=cfg.media_layers, dropout=cfg.dropout,
                                 max_len=cfg.max_frames)
        self.pool = AttentionPool(cfg.media_hidden) if cfg.media_pooling == "attention" else None
        self.mapping = Mapping(cfg.media_hidden, cfg.embed_dim, cfg.dropout)

    @staticmethod
    def text_mapping(in_dim: int, cfg: TrainConfig) -> nn.Module:
        """The text side of this tower's common space: one projection."""
        return Mapping(in_dim, cfg.embed_dim, cfg.dropout)

    def forward(self, features: torch.Tensor, mask: torch.Tensor, refine: Refine | None = None,
                pooled: torch.Tensor | None = None) -> TowerOutput:
        """``refine`` rewrites the frame states before pooling (LECCR's slot interaction); ``pooled``
        (bool, broadcast to the mask) keeps only those positions for the pooling (LECCR: each frame's
        CLS token); ``tokens`` stay as read."""
        states = self.head(features, mask)
        seq = states if refine is None else refine(states, mask)
        keep = mask if pooled is None else mask & pooled
        vector = masked_mean(seq, keep) if self.pool is None else self.pool(seq, keep)
        return TowerOutput(self.mapping(vector), states, mask)


def frame_cls(frames: int, tokens_per_frame: int, device: torch.device | None = None) -> torch.Tensor:
    """``(frames * tokens_per_frame,)`` bool: True on the first token of every frame, where CLIP puts its CLS."""
    first = torch.zeros(frames, tokens_per_frame, dtype=torch.bool, device=device)
    first[:, 0] = True
    return first.flatten()


def media_tower_class(cfg: TrainConfig) -> Any:
    """The visual tower class ``video_encoder`` names (``ccr.train.model.video.encoders``)."""
    module, attr = ENCODERS[cfg.video_encoder].tower.split(":")
    return getattr(importlib.import_module(module), attr)


def load_text_encoder(path: Path, *, pretrained: bool) -> tuple[nn.Module, Any]:
    """(encoder, tokenizer) from a model directory; without ``pretrained`` only the architecture.

    Run directories keep the config and tokenizer only (weights live in the checkpoint), so a
    trained run loads without the hub. The pooler is dropped: no head uses it, and parameters
    without gradients would stall DDP.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from ccr.models import quiet_loading

    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(path)
            encoder = (AutoModel.from_pretrained(path) if pretrained
                       else AutoModel.from_config(AutoConfig.from_pretrained(path)))
    except (OSError, ValueError) as e:
        raise CcrError(f"cannot load the text tower from {path}: {e}") from None
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder, tokenizer


def freeze_bottom(encoder: nn.Module, n_layers: int) -> None:
    """Freeze the embeddings and the ``n_layers`` lowest blocks (NRCCR trains only the upper ones)."""
    if n_layers <= 0:
        return
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    embeddings = getattr(encoder, "embeddings", None)
    if layers is None or embeddings is None:
        raise CcrError(f"text_frozen_layers: {type(encoder).__name__} has no BERT-style layer list; set it to 0")
    if n_layers > len(layers):
        raise CcrError(f"text_frozen_layers={n_layers} but the text tower has only {len(layers)} layers")
    for module in (embeddings, *layers[:n_layers]):
        for p in module.parameters():
            p.requires_grad_(False)
