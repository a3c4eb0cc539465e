"""Helpers shared by the NRCCR and CL2CM tests: a method built by hand, a batch, trained vs untrained SumR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from train_helpers import sets

import ccr.train
from ccr.corpus.corpus import Corpus
from ccr.models import resolve
from ccr.train.config import resolve_configs
from ccr.train.data.rows import eval_records
from ccr.train.data.tokens import tokenize
from ccr.train.eval.metrics import retrieval_metrics
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import Method, StepInfo
from ccr.train.model.towers import load_text_encoder
from ccr.train.run.loop import train
from ccr.train.run.trained import instantiate

MEDIA_DIM = 32  # the synthetic corpus's feature width
STEP = StepInfo(epoch=0, step=0, total_steps=10, steps_per_epoch=10)


def build(method: str, **options: object) -> tuple[Method, object]:
    """An untrained method with the trainer tests' tiny towers, and its tokenizer."""
    cls = get_method(method)
    train_cfg, method_cfg = resolve_configs(method, cls.Config, sets=sets(**options))
    encoder, tokenizer = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    env = {"media_dim": MEDIA_DIM, "langs": ["de"], "n_train": 0}
    return instantiate(cls, train_cfg, method_cfg, encoder=encoder, env=env), tokenizer


def batch(tokenizer: object, n: int = 4) -> dict[str, object]:
    """A training batch of ``n`` tuples whose captions have different lengths, so padding is exercised."""
    words = ["red", "dog", "blue", "cat", "green", "horse", "white", "bird"]
    en = [" and ".join(words[i:i + 2 + i % 3]) for i in range(n)]
    mt = [" und ".join(words[i:i + 1 + 2 * (i % 2)]) for i in range(n)]
    return {
        "media": torch.randn(n, 1, MEDIA_DIM), "media_mask": torch.ones(n, 1, dtype=torch.bool),
        "media_index": torch.arange(n), "index": torch.arange(n), "lang": torch.zeros(n, dtype=torch.long),
        "weight": torch.ones(n), "en": tokenize(tokenizer, en, 32), "mt": tokenize(tokenizer, mt, 32),
        "bt": tokenize(tokenizer, en[::-1], 32),
    }


def train_run(factory: Any, corpus: Path, method: str, epochs: int, **options: object) -> Path:
    """A run directory of ``method`` trained ``epochs`` epochs on ``corpus`` with the tiny towers."""
    out = factory.mktemp("runs") / method
    train(corpus, out, method=method, sets=sets(epochs=epochs, **options), log=lambda _: None)
    return out


def history(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def trained_and_untrained_sumr(run: Path, corpus: Path) -> tuple[float, float]:
    """Native-query test SumR of a trained run's best checkpoint, and of the same method untrained."""
    model = ccr.train.load(run)
    records = eval_records(Corpus.open(corpus), "test", "de")

    def sumr() -> float:
        sim = model.encode_text(records.queries) @ model.encode_media(records.gallery).T
        return retrieval_metrics(sim, records.text_to_media)["sumr"]

    trained = sumr()
    encoder, _ = load_text_encoder(resolve("tiny/bert").path, pretrained=True)
    model.method = instantiate(type(model.method), model.train_cfg, model.method_cfg, encoder=encoder,
                               env={"media_dim": MEDIA_DIM, "langs": ["de"], "n_train": 0})
    return trained, sumr()
