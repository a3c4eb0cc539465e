"""One synthetic corpus and one trained baseline run for the whole trainer test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 train / 40 val / 40 test items, 32 concepts, German MT + back-translation (see ccr.testing.synthetic)."""
    from ccr.testing.synthetic import write_synthetic_corpus

    return write_synthetic_corpus(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, synth_corpus: Path) -> Path:
    """The baseline (triplet, NRCCR defaults) trained 6 epochs on the synthetic corpus."""
    from train_helpers import sets

    from ccr.train.run.loop import train

    out = tmp_path_factory.mktemp("runs") / "baseline"
    train(synth_corpus, out, sets=sets(epochs=6), log=lambda _: None)
    return out
