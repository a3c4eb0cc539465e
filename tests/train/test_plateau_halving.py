"""NRCCR's and RIVRL's plateau rule: lr x 0.5 after an epoch without validation gain, at most every N epochs.

Design: a learning rate of 1e-9 leaves the model, and so its validation SumR, unchanged after the
first epoch, so every later epoch is a plateau; epoch decay off, so the recorded rates show the
halvings alone.
"""

import json

import pytest
from train_helpers import sets

from ccr.train.model.methods.nrccr import NrccrConfig
from ccr.train.model.methods.rivrl import RivrlConfig
from ccr.train.run.loop import train


@pytest.mark.parametrize(("every", "factors"), [(1, [1, 0.5, 0.25, 0.125, 0.0625]), (2, [1, 0.5, 0.5, 0.25, 0.25])])
def test_the_lr_halves_on_plateaus_at_most_every_n_epochs(tmp_path, synth_corpus, every, factors):
    out = tmp_path / "run"
    train(synth_corpus, out, sets=sets(epochs=5, lr=1e-9, epoch_decay=1, plateau_halving=every), log=lambda _: None)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len({h["val"]["de"]["sumr"] for h in history}) == 1, "the design: no epoch improves validation"
    assert [h["lr"] for h in history] == pytest.approx([1e-9 * f for f in factors])


def test_nrccr_and_rivrl_halve_by_default():
    assert NrccrConfig.train_defaults["plateau_halving"] == RivrlConfig.train_defaults["plateau_halving"] == 3
