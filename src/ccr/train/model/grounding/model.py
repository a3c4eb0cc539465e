"""The RGTR network: query-conditioned clip encoder, anchor-pair moment decoder, three heads.

The paper's code is not public (reference/video_methods.md §2.1); this follows its verified ideas
on the Moment-DETR / QD-DETR skeleton (§2.3) and the spec's proposals where it is silent (§2.4):

* Input: clip features plus the 2-d temporal-endpoint feature (start/end of each clip in 0..1),
  and the text tower's token states; each projected to ``hidden`` by two LayerNorm-dropout-linear
  layers.
* Encoder: ``enc_layers`` text-to-video layers (video self-attention, cross-attention to the
  query's tokens, FFN; QD-DETR's order), sine positions on clip centres. A linear head on the
  encoded clips gives the per-clip saliency.
* Decoder: ``num_queries`` anchor pairs. The static anchor of query k is the k-th cluster centre
  of the training moments (``set_anchors``; frozen buffer), its region. The dynamic anchor starts
  at the static one (plus a learned offset) and every layer refines it in inverse-sigmoid space
  (DAB-DETR style; the next layer sees it detached). A query's positional embedding reads both
  anchors, and its cross-attention to the clips carries a Gaussian prior around the dynamic anchor
  (``region_attention``), so each query looks at and predicts in its region.
* Heads at every layer: span refinement, 2-way foreground logit, and the IoU-aware head that
  predicts the IoU of the query's own span with the ground truth.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ccr.train.model.grounding.spans import inverse_sigmoid, uniform_anchors


def input_projection(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                         nn.LayerNorm(hidden), nn.Dropout(dropout), nn.Linear(hidden, hidden))


def sine_embed(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``[...]`` positions in 0..1 -> ``[..., dim]`` sines and cosines at geometric frequencies."""
    freqs = 10000 ** (torch.arange(dim // 2, device=x.device, dtype=torch.float32) * 2 / dim)
    angles = x.float()[..., None] * 2 * math.pi / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Mlp(nn.Sequential):
    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int):
        dims = [in_dim] + [hidden] * (layers - 1)
        parts: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            parts += [nn.Linear(a, b), nn.ReLU()]
        super().__init__(*parts, nn.Linear(dims[-1], out_dim))


class DecoderLayer(nn.Module):
    """Self-attention among the queries, cross-attention to the clips (with a prior), FFN."""

    def __init__(self, hidden: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, hidden))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, qpos: torch.Tensor, memory: torch.Tensor, mpos: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        q = tgt + qpos
        tgt = self.norms[0](tgt + self.drop(self.self_attn(q, q, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + qpos, memory + mpos, memory, attn_mask=bias, need_weights=False)[0]
        tgt = self.norms[1](tgt + self.drop(attended))
        return self.norms[2](tgt + self.drop(self.ffn(tgt)))


class Grounder(nn.Module):
    def __init__(self, video_dim: int, text_dim: int, *, num_queries: int, hidden: int, heads: int, ffn: int,
                 enc_layers: int, dec_layers: int, dropout: float, input_dropout: float, region_attention: float):
        super().__init__()
        self.hidden, self.heads, self.region_attention = hidden, heads, region_attention
        self.video_proj = input_projection(video_dim + 2, hidden, input_dropout)
        self.text_proj = input_projection(text_dim, hidden, input_dropout)
        self.encoder = nn.ModuleList(
            nn.TransformerDecoderLayer(hidden, heads, ffn, dropout, batch_first=True) for _ in range(enc_layers))
        self.saliency = nn.Linear(hidden, 1)
        self.register_buffer("static_anchors", torch.from_numpy(uniform_anchors(num_queries)))
        self.anchor_offset = nn.Parameter(torch.zeros(num_queries, 2))
        self.content = nn.Embedding(num_queries, hidden)
        self.anchor_pos = Mlp(2 * hidden, hidden, hidden, 2)
        self.decoder = nn.ModuleList(DecoderLayer(hidden, heads, ffn, dropout) for _ in range(dec_layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.span_head = Mlp(hidden, hidden, 2, 3)
        nn.init.zeros_(self.span_head[-1].weight)  # first predictions = the anchors themselves
        nn.init.zeros_(self.span_head[-1].bias)
        self.class_head = nn.Linear(hidden, 2)  # 0 = foreground, 1 = background (Moment-DETR's order)
        self.iou_head = nn.Linear(hidden, 1)

    def set_anchors(self, anchors: torch.Tensor) -> None:
        self.static_anchors.copy_(anchors.to(self.static_anchors))

    def forward(self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t, _ = video.shape
        length = video_mask.sum(1, keepdim=True).clamp(min=1).float()  # [B, 1]
        steps = torch.arange(t, device=video.device, dtype=torch.float32)[None]
        tef = torch.stack([steps / length, (steps + 1) / length], dim=-1) * video_mask[..., None]
        centres = (steps + 0.5) / length  # [B, T]
        mpos = sine_embed(centres, self.hidden)
        x = self.video_proj(torch.cat([video, tef.to(video.dtype)], dim=-1)) + mpos
        words = self.text_proj(text)
        for layer in self.encoder:
            x = layer(x, words, tgt_key_padding_mask=~video_mask, memory_key_padding_mask=~text_mask)
        memory = x.masked_fill(~video_mask[..., None], 0.0)
        saliency = self.saliency(memory).squeeze(-1)

        static = self.static_anchors[None].expand(b, -1, -1)
        anchor = torch.sigmoid(inverse_sigmoid(static) + self.anchor_offset[None])
        static_pos = torch.cat([sine_embed(static[..., 0], self.hidden // 2),
                                sine_embed(static[..., 1], self.hidden // 2)], dim=-1)
        tgt = self.content.weight[None].expand(b, -1, -1)
        spans, logits, ious = [], [], []
        for layer in self.decoder:
            dyn_pos = torch.cat([sine_embed(anchor[..., 0], self.hidden // 2),
                                 sine_embed(anchor[..., 1], self.hidden // 2)], dim=-1)
            qpos = self.anchor_pos(torch.cat([dyn_pos, static_pos], dim=-1))
            tgt = layer(tgt, qpos, memory, mpos, self._region_bias(anchor, centres, length, video_mask))
            h = self.out_norm(tgt)
            refined = torch.sigmoid(inverse_sigmoid(anchor) + self.span_head(h))
            spans.append(refined)
            logits.append(self.class_head(h))
            ious.append(self.iou_head(h).squeeze(-1))
            anchor = refined.detach()
        return {"spans": torch.stack(spans), "logits": torch.stack(logits), "iou": torch.stack(ious),
                "saliency": saliency, "static_anchors": self.static_anchors}

    def _region_bias(self, anchor: torch.Tensor, centres: torch.Tensor, length: torch.Tensor,
                     video_mask: torch.Tensor) -> torch.Tensor:
        """``[B * heads, K, T]`` additive attention prior: -gamma ((t - c) / w)^2, padding masked out."""
        width = torch.maximum(anchor[..., 1:], 1.0 / length[:, None])  # at least one clip
        dist = (centres[:, None, :] - anchor[..., :1]) / width
        bias = (-self.region_attention * dist.pow(2)).masked_fill(~video_mask[:, None, :], float("-inf"))
        return bias.repeat_interleave(self.heads, dim=0)


class TextStates(nn.Module):
    """Token states of the trainer's text tower; frozen by default, as the family's text features are."""

    def __init__(self, encoder: nn.Module, *, frozen: bool):
        super().__init__()
        self.encoder, self.frozen = encoder, frozen
        self.dim = int(encoder.config.hidden_size)
        if frozen:
            for p in encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> TextStates:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # no dropout in a frozen feature extractor
        return self

    def forward(self, tokens: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out: Any = self.encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return out.last_hidden_state, tokens["attention_mask"].bool()
