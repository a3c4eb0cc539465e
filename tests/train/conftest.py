"""One synthetic corpus and one trained baseline run for the whole trainer test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_corpus(build_once) -> Path:
    """200 train / 40 val / 40 test items, 32 concepts, German MT + back-translation (see ccr.testing.synthetic)."""
    from ccr.testing.synthetic import write_synthetic_corpus

    return build_once("synth", write_synthetic_corpus)


@pytest.fixture(scope="session")
def trained_run(build_once, tmp_path_factory: pytest.TempPathFactory, synth_corpus: Path) -> Path:
    """The baseline (triplet, NRCCR defaults) trained 6 epochs on the synthetic corpus."""
    from train_helpers import sets

    from ccr.train.run.loop import train

    def make(root: Path) -> Path:
        train(synth_corpus, root / "baseline", sets=sets(epochs=6), log=lambda _: None)
        return root / "baseline"

    # evaluations write into the run: each worker scores its own copy
    return Path(shutil.copytree(build_once("trained-run", make), tmp_path_factory.mktemp("trained-run") / "baseline"))
