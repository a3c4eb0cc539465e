"""``leccr``: MLLM-enhanced CCR, semantic slots and softened matching (ACM MM 2024).

reference/ccr_methods.md §2. A multimodal LLM describes every image or video in detail; the
description, far richer than a caption, is condensed into K **semantic slots** that interact
with the visual tokens:

* slots: K learned queries cross-attend over the description's token states (the text tower's
  encoder, run without gradient, projected to the visual width), ``slot_layers`` layers; or,
  with ``--set slots=corpus``, the slot vectors ``ccr slots`` clustered from the descriptions
  (data key ``slots``, feature set ``slot_features``), projected to the visual width;
* visual tokens attend to the slots (``interaction_layers`` layers): the enhanced tokens are
  pooled and mapped by the visual tower into the visual embedding ``v``;
* slots attend to the raw visual tokens: visually grounded slots, mapped to the common space
  without normalisation (``z``), the local semantics of **multi-level matching**.

Losses, with one learnable temperature (init 0.07) and multi-positive InfoNCE over the gathered
batch (captions of one item are positives of each other)::

    L = InfoNCE(v, e) + w_cv L_cv + (1 - w) InfoNCE(v, t) + w L_soft + w_et InfoNCE(e, t)
        + w_c (L_c(e) + L_c(t)) + w_reg L_reg

* ``L_cv``: pre-interaction slots against raw visual tokens, each through its own linear map
  and L2-normalised; an item-description score is the mean of all slot x token cosines; soft
  cross-entropy (descriptions -> items, no temperature) to the multi-positive targets.
* ``L_soft``, softened matching under English guidance: the target row of English caption i is
  ``softmax_j(α mm(e_i·v_j) + (1 - α) mm(max_k z_kj·e_i))``, mm = min-max scaling over the
  whole matrix, detached; the student is ``log softmax_j(t_i·v_j)`` on raw cosines; KL, batch
  mean. The MT caption learns whom to resemble from its clean English source.
* ``L_c(x)``: InfoNCE on ``max_k z_k·x`` (temperature as above).
* ``L_reg``: the mean of (cosine Gram matrix of an item's K slots - identity): slots spread.

Inference: the gallery needs its descriptions (or slot vectors) too (``gallery_keys``); the score
is ``v·t``, or with ``slot_fusion`` f > 0, ``(1 - f) mm(v·t) + f mm(max_k z_k·t)`` (LECCR's video
protocol: f = 0.1). Defaults are the reference's Multi30K-fr/cs and COCO-zh values (K 4, 3 slot
layers, 2 interaction layers, 8 heads, w 0.5, α 0.8, w_c = w_cv = w_reg = 0.01), and its shared
settings are LECCR's own ``train_defaults`` (§2.5): AdamW lr 1e-5, weight decay 0.01, betas
0.9/0.98, 10% warm-up then linear decay, no epoch decay, CLS pooling of the text, a 256-d space,
a 512-wide visual side (CLIP's), 200 tokens, CLIP input at 384 when ``image_encoder`` is set.

Visual tokens. Slots interact with visual TOKENS; on one pooled vector per image the interaction,
``L_cv`` and the grounded slots degenerate. LECCR's own input is the fine-tuned CLIP at 384
(``--set image_encoder=openai/clip-vit-base-patch32``: 145 tokens per image); CLIP patch tokens
stored by ``ccr features --variant patches``, or frame features of videos, are token inputs too.
Training on single-token features is refused unless ``--set allow_single_token=true``.

Where ours differs from the released code, and why:

* The slot queries start as small random vectors, not zeros: identical zero queries make K
  identical slots that only dropout tells apart.
* The visual embedding is each frame's enhanced CLS token, averaged over frames, when the input
  has CLS positions (the fine-tuned CLIP: LECCR uses CLS for images, a mean over frames for
  video); stored features carry no CLS position the tower can find (frames, or patch tokens
  flattened over frames), so their enhanced tokens are pooled with the tower's own pooling.
* ``--set slots=corpus`` masks the filler slots ``ccr slots`` adds to items with fewer than K
  description sentences (zero vectors in the batch, ``ccr.train.data.media.SlotSource``): they take
  no part in attention, slot-level matching, ``L_cv``, ``L_reg`` or the gallery's slot score.
* The released softened-matching target adds the English→visual matrix to the *transposed*
  slot matrix (rows items, columns captions); we use the orientation the method describes (both
  rows English captions). Slot-level matching uses multi-positive targets over the gathered batch,
  like every other term here (the original: diagonal labels on the local batch).
* Per-sample corpus weights multiply the (visual, MT) InfoNCE and the softened-matching rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ccr.errors import CcrError
from ccr.train.config import MethodConfig, arch_field
from ccr.train.model.losses import (
    info_nce,
    kl_divergence,
    positives,
    soft_cross_entropy,
)
from ccr.train.model.methods.base import (
    LossPlugin,
    LossTerm,
    Outputs,
    RetrievalMethod,
    StepInfo,
)
from ccr.train.model.objectives import Alignment, Pair
from ccr.train.model.scores import minmax
from ccr.train.model.towers import frame_cls, masked_mean
from ccr.train.ranges import BELOW_ONE, COUNT, NON_NEGATIVE, POSITIVE, SHARE, Range
from ccr.train.run.distributed import gather

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ccr.train.config import TrainConfig
    from ccr.train.data.batching import Batch
    from ccr.train.data.media import MediaSource
    from ccr.train.model.methods.base import BuildEnv

QUERY_INIT_STD = 0.02  # spread of the initial slot queries (breaks their symmetry)
TOKEN_SAMPLE = 64  # training items looked at to tell single-token features from token features


@dataclass
class LeccrConfig(MethodConfig):
    train_defaults: ClassVar[dict[str, Any]] = {  # reference/ccr_methods.md §2.2, §2.5
        "lr": 1e-5, "weight_decay": 0.01, "betas": [0.9, 0.98], "warmup": 0.1, "schedule": "linear",
        "epoch_decay": 1.0, "text_pooling": "cls", "embed_dim": 256, "media_hidden": 512, "max_tokens": 200,
        "image_size": 384,
    }
    slots: Literal["learned", "corpus"] = arch_field("learned")  # learned queries over descriptions, or ccr slots
    n_slots: int = arch_field(4)  # K learned slot queries (images 4, MSR-VTT-CN 2)
    slot_layers: int = arch_field(3)  # cross-attention layers of the queries over description tokens (video: 2)
    interaction_layers: int = arch_field(2)  # layers of each slot <-> visual token cross-attention stack
    heads: int = arch_field(8)  # attention heads in every cross-attention layer
    attention_dropout: float = 0.1  # dropout inside the cross-attention layers
    temperature: float = 0.07  # InfoNCE initial temperature
    learn_temperature: bool = True  # the temperature is a parameter
    w_et: float = 1.0  # InfoNCE(English, MT)
    w_soft: float = 0.5  # softened matching's share of the (visual, MT) term (de: 0, ja and video: 0.3)
    soft_alpha: float = 0.8  # English-visual share of the softened targets (the rest: slots-English)
    w_c: float = 0.01  # multi-level (slot-level) matching (ja: 0.05)
    w_cv: float = 0.01  # slot <-> visual token alignment
    w_reg: float = 0.01  # slot diversity (de: 0.05, video: 0.03)
    slot_fusion: float = 0.0  # share of the max-slot score at retrieval (LECCR video: 0.1, images: 0)
    allow_single_token: bool = False  # train on one visual vector per item (pooled features): the slots degenerate

    ranges: ClassVar[dict[str, Range]] = dict.fromkeys(("w_et", "w_c", "w_cv", "w_reg", "slot_layers",
                                                        "interaction_layers"), NON_NEGATIVE) | {
        "n_slots": COUNT, "heads": COUNT, "attention_dropout": BELOW_ONE, "temperature": POSITIVE, "w_soft": SHARE,
        "soft_alpha": SHARE, "slot_fusion": SHARE}

    def validate(self, train: TrainConfig) -> None:
        super().validate(train)
        if train.media_hidden % self.heads:
            raise CcrError(f"leccr: heads={self.heads} must divide the visual width media_hidden={train.media_hidden}")


def best_slot(z: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[i, j] = max_k z[j, k] · x[i]``: rows the sentences ``x (N, E)``, columns the items of ``z (M, K, E)``;
    ``mask (M, K)`` leaves out filler slots."""
    scores = torch.einsum("ie,jke->ijk", x, z)
    if mask is not None:
        scores = scores.masked_fill(~mask[None], float("-inf"))
    return scores.amax(dim=-1)


class CrossLayer(nn.Module):
    """LECCR's cross-attention layer: attend to the memory, GELU FFN, residual, post-LayerNorm."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, width))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(queries, memory, memory, key_padding_mask=~memory_mask, need_weights=False)
        return self.norm(queries + self.dropout(self.ffn(attended)))


class CrossStack(nn.Module):
    def __init__(self, width: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(CrossLayer(width, heads, dropout) for _ in range(layers))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            queries = layer(queries, memory, memory_mask)
        return queries


class LeccrObjective(LossPlugin):
    """Every LECCR term (module notes); owns the temperature and the slot-visual alignment maps."""

    def __init__(self, cfg: LeccrConfig, width: int):
        super().__init__()
        self.cfg = cfg
        self.align = Alignment({"ve": Pair("e", "v"), "vt": Pair("t", "v", 1.0 - cfg.w_soft, weighted=True),
                                "et": Pair("t", "e", cfg.w_et)},
                               kind="infonce", temperature=cfg.temperature, learn_temperature=cfg.learn_temperature)
        self.slot_map = nn.Linear(width, width)  # L_cv: pre-interaction slots
        self.token_map = nn.Linear(width, width)  # L_cv: raw visual tokens

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        cfg = self.cfg
        terms = self.align(outputs, batch, step)
        pos = positives(gather(batch["media_index"]))
        e, t, v, z = (gather(outputs[k]) for k in ("e", "t", "v", "z"))
        real = gather(outputs["mask_slots"].to(torch.uint8)).bool()  # filler slots: False
        temperature = self.align.temperature()
        slot_e, slot_t = best_slot(z, e, real), best_slot(z, t, real)
        with torch.no_grad():
            target = (cfg.soft_alpha * minmax(e @ v.T) + (1.0 - cfg.soft_alpha) * minmax(slot_e)).softmax(dim=-1)
        terms["soft"] = LossTerm(kl_divergence(t @ v.T, target, weights=gather(batch["weight"])), cfg.w_soft)
        terms["slot"] = LossTerm(info_nce(slot_e, pos, temperature) + info_nce(slot_t, pos, temperature), cfg.w_c)
        described = masked_mean(F.normalize(self.slot_map(outputs["slots"]), dim=-1), outputs["mask_slots"])
        seen = masked_mean(F.normalize(self.token_map(outputs["tok_v"]), dim=-1), outputs["mask_v"])
        agree = gather(described) @ gather(seen).T  # mean slot x token cosine, item by item
        terms["cv"] = LossTerm(soft_cross_entropy(agree, pos / pos.sum(dim=1, keepdim=True)), cfg.w_cv)
        terms["reg"] = LossTerm(slot_overlap(outputs["slots"], outputs["mask_slots"]), cfg.w_reg)
        return terms


def slot_overlap(slots: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``L_reg``: the mean of (cosine Gram matrix of an item's slots - identity) over the pairs of its
    real slots (``mask (B, K)``), averaged over the batch; with every slot real, LECCR's mean."""
    unit = F.normalize(slots, dim=-1)
    gram = unit @ unit.mT - torch.eye(unit.shape[1], device=unit.device, dtype=unit.dtype)
    pairs = (mask[:, :, None] & mask[:, None, :]).to(gram.dtype)
    return ((gram * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp_min(1.0)).mean()


class Leccr(RetrievalMethod):
    name = "leccr"
    Config = LeccrConfig
    data_keys = frozenset({"en", "mt", "descriptions"})
    gallery_keys = frozenset({"descriptions"})

    def __init__(self, cfg: LeccrConfig, env: BuildEnv):
        width = env.train.media_hidden
        super().__init__(cfg, env)
        dropout = cfg.attention_dropout
        if cfg.slots == "learned":
            self.slot_input = nn.Linear(env.text_encoder.config.hidden_size, width)  # description tokens
            self.queries = nn.Parameter(torch.randn(cfg.n_slots, width) * QUERY_INIT_STD)
            self.slot_attention = CrossStack(width, cfg.heads, cfg.slot_layers, dropout)
        elif env.slot_dim:
            self.slot_input = nn.Linear(env.slot_dim, width)  # ccr slots' vectors
        else:
            raise CcrError("leccr: slots=corpus needs slot vectors; run ccr slots on the corpus first")
        self.enhance = CrossStack(width, cfg.heads, cfg.interaction_layers, dropout)  # visual tokens <- slots
        self.ground = CrossStack(width, cfg.heads, cfg.interaction_layers, dropout)  # slots <- visual tokens
        self.slot_out = nn.Linear(width, env.train.embed_dim)  # grounded slots -> common space (unnormalised)
        # tokens per frame of the fine-tuned CLIP, whose first is CLS; 0: stored features, no CLS position
        self.frame_tokens = env.image_encoder.tokens_per_frame if env.image_encoder is not None else 0

    @classmethod
    def needed_keys(cls, cfg: LeccrConfig) -> frozenset[str]:
        return frozenset({"en", "mt"}) | cls.needed_gallery_keys(cfg)

    @classmethod
    def needed_gallery_keys(cls, cfg: LeccrConfig) -> frozenset[str]:
        return cls.gallery_keys if cfg.slots == "learned" else frozenset({"slots"})

    def build_losses(self) -> list[LossPlugin]:
        return [LeccrObjective(self.cfg, self.train_cfg.media_hidden)]

    @classmethod
    def check_input(cls, cfg: LeccrConfig, source: MediaSource, media_ids: Sequence[str], *,
                    image_encoder: bool) -> None:
        """Refuse single-token visual input (pooled image features): there are no tokens to interact with."""
        if image_encoder or cfg.allow_single_token:
            return
        sample = sorted(set(media_ids))[:TOKEN_SAMPLE]
        if sample and all(len(source.get(m)) == 1 for m in sample):
            raise CcrError(f"leccr: the visual input {source.name} has one vector per item, so the slots have no "
                           f"visual tokens to interact with; use token features (--set image_encoder=openai/clip-vit-"
                           f"base-patch32, or ccr features --variant patches then --visual NAME), or --set "
                           f"allow_single_token=true to train on it anyway")

    def semantic_slots(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, K, width)`` slots of the batch's items and their ``(B, K)`` mask (False on filler slots)."""
        if self.cfg.slots == "corpus":
            vectors = batch["slots"]
            return self.slot_input(vectors), batch["slots_mask"] & vectors.ne(0).any(dim=-1)
        if "descriptions" not in batch:
            raise CcrError("leccr embeds media with their MLLM descriptions; none came with this batch")
        tokens = batch["descriptions"]
        with torch.no_grad():  # LECCR reads descriptions through the text encoder without training it on them
            states = self.text.encoder(input_ids=tokens["input_ids"],
                                       attention_mask=tokens["attention_mask"]).last_hidden_state
        queries = self.queries.expand(len(states), -1, -1)
        slots = self.slot_attention(queries, self.slot_input(states), tokens["attention_mask"].bool())
        return slots, torch.ones(slots.shape[:2], dtype=torch.bool, device=slots.device)

    def embed_media(self, batch: Batch) -> Outputs:
        """The visual tower reads the frames with its tokens enhanced by the slots (any ``video_encoder``)."""
        slots, slot_mask = self.semantic_slots(batch)
        cls = {}
        if self.frame_tokens:
            cls["pooled"] = frame_cls(batch["media"].shape[1], self.frame_tokens, batch["media"].device)
        v = self.media(batch["media"], batch["media_mask"],
                       refine=lambda tokens, mask: self.enhance(tokens, slots, slot_mask), **cls)
        grounded = self.ground(slots, v.tokens, v.mask)
        return {"v": v.emb, "tok_v": v.tokens, "mask_v": v.mask, "slots": slots,
                "mask_slots": slot_mask, "z": self.slot_out(grounded)}

    def encode_gallery(self, batch: Batch) -> Outputs:
        out = self.embed_media(batch)
        return {"emb": out["v"], "slots": out["z"], "mask_slots": out["mask_slots"]}

    def score(self, queries: Outputs, gallery: Outputs) -> torch.Tensor:
        scores = queries["emb"] @ gallery["emb"].T
        f = self.cfg.slot_fusion
        if f == 0:
            return scores
        slot = best_slot(gallery["slots"], queries["emb"], gallery.get("mask_slots"))
        return (1.0 - f) * minmax(scores) + f * minmax(slot)
