"""One scored corpus, its report and one headless Chromium, shared by every report test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_browser import chromium  # noqa: E402
from scored_corpus import ScoredCorpus, write_scored_corpus  # noqa: E402


@pytest.fixture(scope="session")
def scored(tmp_path_factory: pytest.TempPathFactory) -> ScoredCorpus:
    return write_scored_corpus(tmp_path_factory.mktemp("scored"))


@pytest.fixture(scope="session")
def scored_report(scored: ScoredCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ccr.report import build_report

    return build_report(scored.corpus, tmp_path_factory.mktemp("report") / "out").index


@pytest.fixture(scope="session")
def browser():
    with chromium() as b:
        yield b
