"""Fixtures for the filter tests: one planted corpus, its noisy copy, and that copy scored.

Each is built once per test run; a test that changes a corpus works on its own copy.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from planted_corpus import SCORE, build_planted_corpus  # noqa: E402

NOISE_RATE = 0.2
SPARSE_RATE = 0.05  # a realistic MT noise rate: about three swaps per DCOT group of 64


@pytest.fixture(autouse=True)
def one_thread():
    """The machine is shared: one intra-op thread keeps the tests from fighting other jobs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def planted(build_once) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_once("planted", lambda root: build_planted_corpus(root, media=200, captions=2))


def _inject(planted: Path, out: Path, rate: float) -> str:
    """The planted corpus with ``rate`` of its MT captions swapped into ``out``; the noisy rows' model key."""
    from ccr.filter.noise import inject
    from ccr.stages.runner import RunOptions

    _, keys = inject(planted, out, overrides={"rate": rate, "types": "swap", "seed": 0},
                     options=RunOptions(progress=False))
    return keys["cs"]


@pytest.fixture(scope="session")
def _noisy_master(planted: Path, build_once) -> tuple[Path, str]:
    return build_once("noisy", lambda root: (root / "corpus", _inject(planted, root / "corpus", NOISE_RATE)))


def _score(corpus: Path, key: str) -> None:
    import torch

    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run

    torch.set_num_threads(1)
    run("score", corpus, overrides={"lang": "cs", "mt_model": key, **SCORE}, options=RunOptions(progress=False))


@pytest.fixture(scope="session")
def _scored_master(_noisy_master: tuple[Path, str], build_once) -> Path:
    noisy, key = _noisy_master

    def make(root: Path) -> Path:
        shutil.copytree(noisy, root / "corpus")
        _score(root / "corpus", key)
        return root / "corpus"

    return build_once("scored", make)


@pytest.fixture(scope="session")
def scored_sparse(planted: Path, build_once) -> Path:
    """The planted corpus with 5% of its MT captions swapped (20 of 400), scored; shared, do not modify."""
    def make(root: Path) -> Path:
        _score(root / "corpus", _inject(planted, root / "corpus", SPARSE_RATE))
        return root / "corpus"

    return build_once("sparse", make)


@pytest.fixture
def noisy(_noisy_master: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the noisy corpus (20% swapped MT captions, not scored) and its noisy model key."""
    dest = tmp_path / "noisy"
    shutil.copytree(_noisy_master[0], dest)
    return dest, _noisy_master[1]


@pytest.fixture
def scored(_scored_master: Path, _noisy_master: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the noisy corpus scored with the default settings, and its noisy model key."""
    dest = tmp_path / "scored"
    shutil.copytree(_scored_master, dest)
    return dest, _noisy_master[1]
