"""RIVRL's video tower: a previewing branch and a preview-aware intensive-reading branch.

reference/video_methods.md §1.2. A video is read as a person reads: a cheap overview first, then
a closer look guided by it.

* Previewing: a bidirectional GRU over the frame features (``media_hidden / 4`` per direction,
  RIVRL 512), mean-pooled over real frames, dropout: the *preview*.
* Intensive reading: every frame projected to ``media_hidden`` (RIVRL 2048) + ReLU; from that
  frame-level sequence a segment-level one by a 1-D convolution (window 3, stride 2,
  ``media_hidden`` filters, ReLU). One previewing-aware attention (PaA), shared by both
  granularities: the preview, projected to ``media_hidden / 4`` (512), queries keys of the same
  width; values and output keep ``media_hidden``; the attended vector plus a max-pool of the
  sequence, LayerNorm, then a position-wise FFN (2 x width, dropout 0.1, residual, LayerNorm).
  The two attended vectors are concatenated: the *intensive* vector.
* Common spaces: each branch has a latent head (linear + BatchNorm + dropout, L2-normalised;
  cosine) and, for ``--method rivrl``, a concept head (linear + BatchNorm, sigmoid; generalised
  Jaccard), and the text side a matching head per branch.

One embedding per side for every method: the two latent spaces travel as one vector, each
space's unit vector scaled by 1/√2 and concatenated (``JointLatent``). It has unit norm, and the
dot product of two such vectors is the mean of the two spaces' cosines, which is RIVRL's
latent-only score (the sum of the two cosine matrices, halved: the same ranking). So baseline,
NRCCR, CL2CM, DCOT and LECCR train and score on it unchanged; ``embed_dim`` holds both spaces,
``embed_dim / 2`` each (RIVRL: 2 x 1024). ``--method rivrl`` adds the concept spaces and the
fused score of all four (``ccr.train.model.methods.rivrl``).

Variable frame counts: the GRU reads packed sequences, the convolution's valid windows and
every pooling follow the mask, so a padded video embeds as it does alone. A video shorter than
the window (an image: T = 1) gets one segment over its frames and zero padding, where the
original code would fail.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ccr.errors import CcrError
from ccr.train.model.towers import Refine, TowerOutput, masked_mean
from ccr.train.model.video.encoders import ENCODERS

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig

SEGMENT_WINDOW = 3  # temporal convolution window (every RIVRL script: num_cnn=1, k3)
SEGMENT_STRIDE = 2  # ... and stride
FFN_DROPOUT = 0.1  # inside PaA's position-wise FFN
NORM_EPS = 1e-6  # PaA's LayerNorms


class Reading(NamedTuple):
    preview: torch.Tensor  # (B, 2G) the previewing branch's vector
    intensive: torch.Tensor  # (B, 2W) the intensive-reading branch's vector
    tokens: torch.Tensor  # (B, T, W) frame-level states of the intensive branch (zero on padding)
    mask: torch.Tensor  # (B, T) bool, True on real frames


def segment_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """``(B, length)`` mask of the convolution windows that lie on real frames (at least one per video)."""
    frames = mask.sum(dim=1)
    valid = torch.div(frames - SEGMENT_WINDOW, SEGMENT_STRIDE, rounding_mode="floor") + 1
    valid = valid.clamp(min=1)
    return torch.arange(length, device=mask.device)[None] < valid[:, None]


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


class PreviewAwareAttention(nn.Module):
    """PaA: the preview chooses which frames or segments to read; single head, single layer."""

    def __init__(self, query_dim: int, width: int, key_dim: int, dropout: float):
        super().__init__()
        self.query = nn.Linear(query_dim, key_dim, bias=False)
        self.key = nn.Linear(width, key_dim, bias=False)
        self.value = nn.Linear(width, width, bias=False)
        self.out = nn.Linear(width, width)
        self.attention_dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width, eps=NORM_EPS)
        self.ffn = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width),
                                 nn.Dropout(FFN_DROPOUT))
        self.ffn_norm = nn.LayerNorm(width, eps=NORM_EPS)
        self.scale = 1.0 / math.sqrt(key_dim)

    def forward(self, preview: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, Q)`` preview, ``(B, L, W)`` sequence, ``(B, L)`` mask -> ``(B, W)``."""
        scores = torch.einsum("bk,blk->bl", self.query(preview), self.key(seq)) * self.scale
        weights = self.attention_dropout(scores.masked_fill(~mask, float("-inf")).softmax(dim=-1))
        attended = torch.einsum("bl,blw->bw", weights, self.value(seq))
        x = self.norm(self.out(attended) + masked_max(seq, mask))
        return self.ffn_norm(x + self.ffn(x))


class LatentHead(nn.Module):
    """Linear + BatchNorm + dropout, L2-normalised (Dual Encoding's latent space mapping)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.dropout(self.norm(self.linear(x))), dim=-1)


class JointLatent(nn.Module):
    """Two latent spaces as one unit vector: ``[u_a, u_b] / √2``, whose dot products average the two cosines.

    The video side feeds the preview to ``a`` and the intensive vector to ``b``; the text side
    feeds its one sentence vector to both heads.
    """

    def __init__(self, in_a: int, in_b: int, width: int, dropout: float):
        super().__init__()
        self.a = LatentHead(in_a, width // 2, dropout)
        self.b = LatentHead(in_b, width // 2, dropout)

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        b = a if b is None else b
        return torch.cat([self.a(a), self.b(b)], dim=-1) / math.sqrt(2.0)


def split_spaces(joint: torch.Tensor) -> torch.Tensor:
    """``(N, E)`` joint latent vectors -> ``(N, 2, E/2)`` unit vectors, preview space first."""
    return joint.unflatten(-1, (2, joint.shape[-1] // 2)) * math.sqrt(2.0)


class ConceptHeads(nn.Module):
    """One concept head (linear + BatchNorm) per branch; ``(B, 2, K)`` logits, sigmoid gives the concepts."""

    def __init__(self, in_a: int, in_b: int, concepts: int):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(in_a, concepts), nn.BatchNorm1d(concepts))
        self.b = nn.Sequential(nn.Linear(in_b, concepts), nn.BatchNorm1d(concepts))

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        b = a if b is None else b
        return torch.stack([self.a(a), self.b(b)], dim=1)


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised Jaccard ``Σ min / Σ max`` of non-negative rows: ``(N, K) x (M, K) -> (N, M)``.

    ``min + max = x + y`` and ``max - min = |x - y|``, so both sums come from the row sums and
    one L1 distance matrix, never an ``N x M x K`` tensor.
    """
    total = a.sum(-1)[:, None] + b.sum(-1)[None]
    l1 = torch.cdist(a, b, p=1)
    return (total - l1) / (total + l1).clamp_min(torch.finfo(total.dtype).tiny)


class RivrlTower(nn.Module):
    """The visual tower of ``video_encoder=rivrl``; ``concepts`` > 0 adds the concept heads (``--method rivrl``)."""

    def __init__(self, in_dim: int, cfg: TrainConfig, concepts: int = 0):
        super().__init__()
        ENCODERS["rivrl"].check_widths(cfg.media_hidden, cfg.embed_dim)
        width = cfg.media_hidden
        gru, key = width // 4, width // 4
        self.gru = nn.GRU(in_dim, gru, batch_first=True, bidirectional=True)
        self.preview_dropout = nn.Dropout(cfg.dropout)
        self.frames = nn.Linear(in_dim, width)
        self.segments = nn.Conv1d(width, width, SEGMENT_WINDOW, stride=SEGMENT_STRIDE)
        self.attention = PreviewAwareAttention(2 * gru, width, key, cfg.dropout)
        self.latent = JointLatent(2 * gru, 2 * width, cfg.embed_dim, cfg.dropout)
        self.concepts = ConceptHeads(2 * gru, 2 * width, concepts) if concepts else None

    @staticmethod
    def text_mapping(in_dim: int, cfg: TrainConfig) -> nn.Module:
        """The text side: a latent head per branch over the same sentence vector."""
        return JointLatent(in_dim, in_dim, cfg.embed_dim, cfg.dropout)

    def preview(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        states, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                                     total_length=features.shape[1])
        return self.preview_dropout(masked_mean(states, mask))

    def read(self, features: torch.Tensor, mask: torch.Tensor, refine: Refine | None = None) -> Reading:
        """Both branches; ``refine`` rewrites the frame-level states before the intensive reading (LECCR)."""
        preview = self.preview(features, mask)
        keep = mask.unsqueeze(-1)
        tokens = F.relu(self.frames(features)) * keep
        seq = tokens if refine is None else refine(tokens, mask) * keep
        padded = F.pad(seq, (0, 0, 0, max(0, SEGMENT_WINDOW - seq.shape[1])))
        segments = F.relu(self.segments(padded.transpose(1, 2))).transpose(1, 2)
        intensive = torch.cat([self.attention(preview, seq, mask),
                               self.attention(preview, segments, segment_mask(mask, segments.shape[1]))], dim=-1)
        return Reading(preview, intensive, tokens, mask)

    def concept_logits(self, reading: Reading) -> torch.Tensor:
        """``(B, 2, K)`` concept logits of both branches (preview first)."""
        if self.concepts is None:
            raise CcrError("this RIVRL tower has no concept spaces; they come with --method rivrl")
        return self.concepts(reading.preview, reading.intensive)

    def forward(self, features: torch.Tensor, mask: torch.Tensor, refine: Refine | None = None) -> TowerOutput:
        reading = self.read(features, mask, refine)
        return TowerOutput(self.latent(reading.preview, reading.intensive), reading.tokens, reading.mask)
