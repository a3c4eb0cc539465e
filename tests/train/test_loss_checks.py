"""The loop reads the loss back every ``LOSS_CHECK_EVERY`` steps, not every step (a read stalls an
accelerator), and still stops on a loss that is not finite before it saves weights made from it."""

import pytest
from train_helpers import sets

from ccr.errors import CcrError
from ccr.train.run import loop as training


def test_a_diverging_run_is_stopped_at_the_next_read_before_any_save(tmp_path, synth_corpus, monkeypatch):
    monkeypatch.setattr(training, "LOSS_CHECK_EVERY", 3)
    # lr 1e30: the first update breaks the weights, the second step's loss is NaN; it is read at step 3,
    # before the checkpoint of step 4 could keep the broken weights
    with pytest.raises(CcrError, match=r"^the loss became nan by step 3 \(epoch 1\); lower the learning rate"):
        training.train(synth_corpus, tmp_path / "run", sets=sets(lr=1e30, epochs=2, checkpoint_every=4),
                       log=lambda _: None)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
