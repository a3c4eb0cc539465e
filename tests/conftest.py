"""Shared fixtures: an offline environment, one cache of tiny models, the toy corpus.

Tiny models and the toy corpus are built once per test run (session scope); tests that change a
corpus get their own copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def ccr_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny models are cached here for the whole run, never in the user's ~/.cache."""
    path = tmp_path_factory.mktemp("ccr-cache")
    os.environ["CCR_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def toy_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ccr.testing.toy_corpus import write_toy_corpus

    return write_toy_corpus(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def _toy_corpus_master(tmp_path_factory: pytest.TempPathFactory, toy_source: Path) -> Path:
    from ccr.pipeline.ingest.stage import ingest
    from ccr.pipeline.runner import RunOptions

    dest = tmp_path_factory.mktemp("toy-corpus") / "corpus"
    ingest("jsonl", toy_source / "captions.jsonl", dest, options=RunOptions(progress=False))
    return dest


@pytest.fixture
def toy_corpus(_toy_corpus_master: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested toy corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(_toy_corpus_master, dest)
    return dest


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for every Ray test; workers can import the test helper stages."""
    import ray

    helpers = [str(Path(__file__).parent / "pipeline")]
    path = os.pathsep.join(helpers + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()
