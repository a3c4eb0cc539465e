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
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_planted_corpus(tmp_path_factory.mktemp("planted"), media=200, captions=2)


@pytest.fixture(scope="session")
def _noisy_master(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from ccr.filter.noise import inject
    from ccr.stages.runner import RunOptions

    out = tmp_path_factory.mktemp("noisy") / "corpus"
    _, keys = inject(planted, out, overrides={"rate": NOISE_RATE, "types": "swap", "seed": 0},
                     options=RunOptions(progress=False))
    return out, keys["cs"]


def _score(corpus: Path, key: str) -> None:
    import torch

    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run

    torch.set_num_threads(1)
    run("score", corpus, overrides={"lang": "cs", "mt_model": key, **SCORE}, options=RunOptions(progress=False))


@pytest.fixture(scope="session")
def _scored_master(_noisy_master: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    noisy, key = _noisy_master
    dest = tmp_path_factory.mktemp("scored") / "corpus"
    shutil.copytree(noisy, dest)
    _score(dest, key)
    return dest


@pytest.fixture(scope="session")
def scored_sparse(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted corpus with 5% of its MT captions swapped (20 of 400), scored; shared, do not modify."""
    from ccr.filter.noise import inject
    from ccr.stages.runner import RunOptions

    out = tmp_path_factory.mktemp("sparse") / "corpus"
    _, keys = inject(planted, out, overrides={"rate": SPARSE_RATE, "types": "swap", "seed": 0},
                     options=RunOptions(progress=False))
    _score(out, keys["cs"])
    return out


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
