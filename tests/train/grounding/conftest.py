"""One planted-moment grounding corpus and one trained cross-lingual RGTR run per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def grounding_corpus(build_once) -> Path:
    """80 train / 16 val / 16 test videos, two planted moments each (see ccr.testing.grounding_synthetic)."""
    from ccr.testing.grounding_synthetic import write_grounding_corpus

    return build_once("grounding", write_grounding_corpus)


@pytest.fixture(scope="session")
def rgtr_run(build_once, tmp_path_factory: pytest.TempPathFactory, grounding_corpus: Path) -> Path:
    """RGTR trained 30 epochs on German MT queries (cross-lingual), selected on the German MT val queries."""
    from rgtr_helpers import rgtr_sets

    from ccr.train.run.loop import train

    def make(root: Path) -> Path:
        train(grounding_corpus, root / "de", method="rgtr", sets=rgtr_sets(epochs=30, lang="de", queries="mt"),
              log=lambda _: None)
        return root / "de"

    # evaluations write into the run: each worker scores its own copy
    return Path(shutil.copytree(build_once("rgtr-run", make), tmp_path_factory.mktemp("rgtr-run") / "de"))
