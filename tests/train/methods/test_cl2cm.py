"""CL2CM learns the synthetic corpus; its cross-lingual network aligns words by OT and only teaches.

Corpus: see test_nrccr.py and ccr.testing.synthetic (chance SumR on the 40 test items is about 80).
The unit tests pin down the proposal's pieces: the word-level plan has the uniform marginals of
the real tokens and nothing on padding; the relational targets are detached, so no CM loss
reaches the CL network; inference runs the CM network alone.
"""

import pytest
import torch
import torch.nn.functional as F
from methods_helpers_nc import (
    STEP,
    batch,
    build,
    history,
    train_run,
    trained_and_untrained_sumr,
)

import ccr.train
from ccr.train.model.losses import token_plan
from ccr.train.model.methods.cl2cm import RelationalDistillation

CL_TERMS = {"sent", "word"}
CM_TERMS = {"ve", "vt", "rel", "rel_tt"}


@pytest.fixture(scope="module")
def cl2cm_run(tmp_path_factory, synth_corpus):
    return train_run(tmp_path_factory, synth_corpus, "cl2cm", epochs=5)


def test_cl2cm_learns_far_above_chance_and_the_untrained_model(cl2cm_run, synth_corpus):
    first, *_, last = history(cl2cm_run)
    assert set(last["train"]) == CL_TERMS | CM_TERMS | {"loss"}
    assert last["train"]["sent"] < first["train"]["sent"]  # the CL network learns too
    trained, untrained = trained_and_untrained_sumr(cl2cm_run, synth_corpus)
    assert untrained < 150 and trained > 300 and trained > untrained + 150


def test_inference_runs_the_cross_modal_network_alone(cl2cm_run):
    model = ccr.train.load(cl2cm_run)
    queries = ["rot und Hund", "man sieht Katze und blau"]
    before = model.encode_text(queries)
    with torch.no_grad():
        for p in model.method.cl_text.parameters():
            p.add_(torch.randn_like(p))
    assert (model.encode_text(queries) == before).all()
    shared = {id(p) for p in model.method.text.parameters()} & {id(p) for p in model.method.cl_text.parameters()}
    assert not shared  # two networks, not one encoder with two heads


def test_word_level_plan_keeps_uniform_marginals_on_real_tokens_and_trains_the_cl_network_only():
    method, tokenizer = build("cl2cm")
    result = method(batch(tokenizer), STEP)
    out, cfg = result.outputs, method.cfg
    mask_e, mask_t = out["mask_cl_e"], out["mask_cl_t"]
    assert not mask_e.all() and not mask_t.all()  # padding on both sides
    plan, cost = token_plan(out["tok_cl_e"], mask_e, out["tok_cl_t"], mask_t, eps=cfg.ot_eps, max_iter=cfg.ot_iters)
    assert not plan.requires_grad and cost.requires_grad  # the plan is a label; gradients go through the cost
    rows = mask_e / mask_e.sum(1, keepdim=True)
    cols = mask_t / mask_t.sum(1, keepdim=True)
    assert torch.allclose(plan.sum(2), rows, atol=1e-4) and torch.allclose(plan.sum(1), cols, atol=1e-2)
    assert result.terms["word"].value.item() == pytest.approx((plan * cost).sum((1, 2)).mean().item(), rel=1e-4)

    result.terms["word"].value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.cl_text.encoder.parameters())
    assert all(p.grad is None for p in [*method.text.parameters(), *method.media.parameters()])
    method.zero_grad(set_to_none=True)
    sum(result.terms[name].value for name in CM_TERMS).backward()
    assert all(p.grad is None for p in method.cl_text.parameters())  # the teacher only gives targets
    assert any(p.grad is not None for p in method.text.parameters())


def test_relational_distillation_is_zero_when_the_relations_agree_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    plugin = RelationalDistillation(w_rel=1.0, w_intra=1.0, teacher_temperature=0.1, student_temperature=0.1)
    e, t = (F.normalize(torch.randn(6, 8), dim=-1).requires_grad_(True) for _ in range(2))
    same = plugin({"v": e, "t": t, "cl_e": e, "cl_t": t}, {}, STEP)
    assert same["rel"].value.item() == pytest.approx(0.0, abs=1e-6)
    assert same["rel_tt"].value.item() == pytest.approx(0.0, abs=1e-6)
    v = F.normalize(torch.randn(6, 8), dim=-1).requires_grad_(True)
    cl_e, cl_t = e.detach().clone().requires_grad_(True), t.detach().clone().requires_grad_(True)
    other = plugin({"v": v, "t": t, "cl_e": cl_e, "cl_t": cl_t}, {}, STEP)
    assert other["rel"].value.item() > 0.01
    (other["rel"].value + other["rel_tt"].value).backward()
    assert v.grad is not None and cl_e.grad is None and cl_t.grad is None
    assert set(RelationalDistillation(w_rel=1.0, w_intra=0.0, teacher_temperature=0.1, student_temperature=0.1)(
        {"v": v, "t": t, "cl_e": cl_e, "cl_t": cl_t}, {}, STEP)) == {"rel"}
