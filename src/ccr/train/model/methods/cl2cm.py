"""``cl2cm``: cross-lingual to cross-modal knowledge transfer (CL2CM, AAAI 2024).

reference/ccr_methods.md §3. The paper's code is not public and its full text was not
retrievable, so this is the reference's faithful-in-spirit proposal (§3.3), with the choices it
leaves open made as below. The idea: English and its MT caption are far closer to each other
(same modality, a multilingual encoder) than either is to the image, so a cross-lingual (CL)
network gives more reliable correspondences than the noisy visual-MT pairs, and hands them to
the cross-modal (CM) network as relations between samples.

* CL network (teacher): a text tower of its own, started from the same pretrained encoder,
  trained on English (``cl_e``) and MT (``cl_t``) only, at two levels: sentence-level InfoNCE
  between the two embeddings (``sent``) and word-level optimal transport between their token
  states (``word``): cost ``1 - cos``, uniform marginals over real tokens, entropic Sinkhorn
  (eps 0.05, 50 iterations); the loss is the transport cost ``<plan, C>``. The plan is solved
  without gradient and acts as the soft word alignment the token states are pulled along; the
  gradient reaches them through the cost, which by the envelope theorem is the exact gradient
  of the entropic transport value, so no term here needs gradients through the iterations.
* CM network (student, the only one used at test time): the usual visual and text towers with
  InfoNCE on (visual, English) and (visual, MT) (``ve``, ``vt``), plus relational distillation:
  the CL network's English->MT similarity distributions over the batch teach the CM network's
  visual->MT ones, the English caption standing in for its image (``rel``: KL, both directions,
  teacher detached), and the CL network's MT<->MT relations teach the CM network's (``rel_tt``,
  self-pairs left out). The teacher only ever gives targets: its own losses train it, none of the
  CM's reach it.

Choices the reference leaves open, with the reasons: two separate networks rather than one
shared encoder (the paper's framing, and a teacher that CM gradients cannot bend); the CL network
is trained jointly from the first step rather than pre-trained (one run, one loop; a pre-training
phase or a warm-up of the distillation weights would be an ``on_epoch_start`` hook away); both
temperatures 0.07 (NRCCR's distillation value and the InfoNCE initial value of the family); all
weights 1; corpus weights multiply the per-pair terms (``vt``, ``sent``, ``word``), not the batch
relations. Cost: the CL tower doubles the text encoder's parameters, and training runs four text
passes per step (English and MT through each network); inference is the baseline's.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from ccr.train.config import MethodConfig
from ccr.train.model.losses import kl_divergence, ot_distance
from ccr.train.model.methods.base import (
    BuildEnv,
    LossPlugin,
    LossTerm,
    Outputs,
    RetrievalMethod,
    StepInfo,
)
from ccr.train.model.objectives import Alignment, Pair
from ccr.train.ranges import COUNT, NON_NEGATIVE, POSITIVE, Range
from ccr.train.run.distributed import gather

if TYPE_CHECKING:
    from ccr.train.data.batching import Batch

CL_OUTPUTS = {"en": "cl_e", "mt": "cl_t"}  # batch key -> CL network output name


@dataclass
class Cl2cmConfig(MethodConfig):
    temperature: float = 0.07  # initial InfoNCE temperature of each network (learnable)
    w_en: float = 1.0  # CM: InfoNCE(visual, English)
    w_mt: float = 1.0  # CM: InfoNCE(visual, MT)
    w_sent: float = 1.0  # CL: sentence-level InfoNCE(English, MT)
    w_word: float = 1.0  # CL: word-level OT cost between English and MT token states
    ot_eps: float = 0.05  # entropic regularisation of the word-level OT (cost 1 - cos, in [0, 2])
    ot_iters: int = 50  # Sinkhorn iterations of the word-level OT
    w_rel: float = 1.0  # relational distillation: CL English<->MT relations -> CM visual<->MT
    w_rel_intra: float = 1.0  # relational distillation: CL MT<->MT relations -> CM MT<->MT; 0 = off
    teacher_temperature: float = 0.07  # softmax temperature of the CL relations
    student_temperature: float = 0.07  # softmax temperature of the CM relations

    loss_weights: ClassVar[tuple[str, ...]] = ("w_en", "w_mt", "w_sent", "w_word", "w_rel", "w_rel_intra")
    ranges: ClassVar[dict[str, Range]] = dict.fromkeys(loss_weights, NON_NEGATIVE) | dict.fromkeys(
        ("temperature", "teacher_temperature", "student_temperature", "ot_eps"), POSITIVE) | {"ot_iters": COUNT}


class WordAlignment(LossPlugin):
    """Word-level OT between the CL network's English and MT token states, per training pair."""

    def __init__(self, weight: float, *, eps: float, max_iter: int):
        super().__init__()
        self.weight, self.eps, self.max_iter = weight, eps, max_iter

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        cost = ot_distance(outputs["tok_cl_e"], outputs["mask_cl_e"], outputs["tok_cl_t"], outputs["mask_cl_t"],
                           eps=self.eps, max_iter=self.max_iter)
        return {"word": LossTerm((cost * batch["weight"].to(cost.dtype)).mean(), self.weight)}


def _off_diagonal(x: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` -> ``(N, N - 1)``: every row without its self-pair."""
    n = x.shape[0]
    return x[~torch.eye(n, dtype=torch.bool, device=x.device)].view(n, n - 1)


class RelationalDistillation(LossPlugin):
    """The CL network's batch relations are the targets of the CM network's (KL, teacher detached)."""

    def __init__(self, *, w_rel: float, w_intra: float, teacher_temperature: float, student_temperature: float):
        super().__init__()
        self.w_rel, self.w_intra = w_rel, w_intra
        self.tau_t, self.tau_s = teacher_temperature, student_temperature

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        v, t = gather(outputs["v"]), gather(outputs["t"])
        with torch.no_grad():
            cl_e, cl_t = gather(outputs["cl_e"]), gather(outputs["cl_t"])
            cross = cl_e @ cl_t.T / self.tau_t
        student = v @ t.T / self.tau_s
        rel = (kl_divergence(student, cross.softmax(dim=1)) + kl_divergence(student.T, cross.T.softmax(dim=1))) / 2
        terms = {"rel": LossTerm(rel, self.w_rel)}
        if self.w_intra > 0:
            with torch.no_grad():
                intra = _off_diagonal(cl_t @ cl_t.T / self.tau_t).softmax(dim=1)
            terms["rel_tt"] = LossTerm(kl_divergence(_off_diagonal(t @ t.T / self.tau_s), intra), self.w_intra)
        return terms


class Cl2cm(RetrievalMethod):
    name = "cl2cm"
    proposal = "reference/ccr_methods.md §3.3"  # no released code
    Config = Cl2cmConfig
    data_keys = frozenset({"en", "mt"})

    def __init__(self, cfg: Cl2cmConfig, env: BuildEnv):
        super().__init__(cfg, env)
        # The CL network's own text tower, from the same pretrained weights as the CM one.
        self.cl_text = self.build_text_tower(dataclasses.replace(env, text_encoder=copy.deepcopy(env.text_encoder)))

    def build_losses(self) -> list[LossPlugin]:
        cfg = self.cfg
        return [
            Alignment({"ve": Pair("e", "v", cfg.w_en), "vt": Pair("t", "v", cfg.w_mt, weighted=True)},
                      kind="infonce", temperature=cfg.temperature),
            Alignment({"sent": Pair("cl_e", "cl_t", cfg.w_sent, weighted=True)}, kind="infonce",
                      temperature=cfg.temperature),
            WordAlignment(cfg.w_word, eps=cfg.ot_eps, max_iter=cfg.ot_iters),
            RelationalDistillation(w_rel=cfg.w_rel, w_intra=cfg.w_rel_intra,
                                   teacher_temperature=cfg.teacher_temperature,
                                   student_temperature=cfg.student_temperature),
        ]

    def embed(self, batch: Batch) -> Outputs:
        """The CM outputs (``v``, ``e``, ``t``...) plus the CL network's ``cl_e``, ``cl_t`` and their tokens."""
        out = super().embed(batch)
        for key, short in CL_OUTPUTS.items():
            x = self.cl_text(batch[key])
            out |= {short: x.emb, f"tok_{short}": x.tokens, f"mask_{short}": x.mask}
        return out
