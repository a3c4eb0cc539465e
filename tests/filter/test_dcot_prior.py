"""``ccr score``'s ``dcot_conf`` is the trainer's DCOT confidence, computed from fixed embedders.

DESIGN.md, "DCOT twice": the static prior and the online confidence are one quantity from
different inputs. With one encoder on both views' MT side (``--embedder`` = ``--mclip-text``),
the stage's inputs for a group are exactly what the trainer's loss plug-in sees for a batch:
English, visual and MT unit vectors of the group's pairs. Fed those vectors at the score's fixed
view weight, ``ccr train --method dcot``'s own plug-in must hold the stage's ``dcot_conf`` in its
confidence buffer.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from planted_corpus import FEATURES, SCORE

from ccr.corpus.corpus import Corpus
from ccr.filter.dcot_conf import make_groups
from ccr.filter.score import ScoreConfig
from ccr.models import resolve
from ccr.stages.runner import RunOptions
from ccr.stages.table import run
from ccr.train.model.methods.base import StepInfo
from ccr.train.model.methods.dcot import DcotConfig, DualViewAlignment

ONE_ENCODER = {"lang": "cs", **SCORE, "embedder": "tiny/mclip-text", "mclip_text": "tiny/mclip-text"}


def test_the_static_prior_equals_the_trainers_confidence_on_the_same_embeddings(noisy):
    from sentence_transformers import SentenceTransformer

    corpus, key = noisy
    run("score", corpus, overrides=ONE_ENCODER | {"mt_model": key}, options=RunOptions(progress=False))
    opened = Corpus.open(corpus)
    prior = dict(opened.table("captions.score").select("caption_id", "dcot_conf").iter_rows())
    captions = opened.scan("captions").collect()
    english = dict(captions.select("caption_id", "text").iter_rows())
    rows = {r["caption_id"]: r for r in captions.filter(pl.col("model") == key).iter_rows(named=True)}
    encoder = SentenceTransformer(str(resolve("tiny/mclip-text").path), device="cpu")
    store = opened.features(FEATURES)

    def unit(texts: list[str]) -> torch.Tensor:
        return encoder.encode(texts, normalize_embeddings=True, convert_to_tensor=True).float().cpu()

    cfg = ScoreConfig()
    method = DcotConfig(view_start=cfg.view_weight, view_end=cfg.view_weight)  # the score's fixed λ
    assert (method.ot_eps, method.ot_relax, method.ot_iters) == (cfg.ot_eps, cfg.ot_relax, cfg.ot_iters)
    plugin = DualViewAlignment(method, n_train=len(rows))
    order: list[str] = []
    for group in make_groups(list(rows), cfg.group_size, cfg.seed):
        pairs = [rows[i] for i in group]
        media = {m: k for k, m in enumerate(dict.fromkeys(r["media_id"] for r in pairs))}
        visual = np.stack([store.get(r["media_id"]).astype(np.float32).mean(axis=0) for r in pairs])
        outputs = {"e": unit([english[r["parent_id"]] for r in pairs]), "t": unit([r["text"] for r in pairs]),
                   "v": F.normalize(torch.from_numpy(visual), dim=-1)}
        batch = {"media_index": torch.tensor([media[r["media_id"]] for r in pairs]),
                 "index": torch.arange(len(order), len(order) + len(pairs)), "weight": torch.ones(len(pairs))}
        plugin(outputs, batch, StepInfo(epoch=1, step=0, total_steps=1, steps_per_epoch=1))
        order += group
    expected = np.array([prior[i] for i in order])
    np.testing.assert_allclose(plugin.confidence.numpy(), expected, atol=1e-5)
    noisy_rows = np.array([rows[i]["noise_type"] != "none" for i in order])
    assert expected[noisy_rows].mean() < 0.5 * expected[~noisy_rows].mean()  # a confidence that says something
