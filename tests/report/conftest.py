"""One scored corpus, its report and one headless Chromium, shared by every report test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_browser import chromium  # noqa: E402
from scored_corpus import ScoredCorpus, write_scored_corpus  # noqa: E402


@pytest.fixture(scope="session")
def scored(build_once) -> ScoredCorpus:
    return build_once("report-scored", write_scored_corpus)


@pytest.fixture(scope="session")
def scored_report(scored: ScoredCorpus, build_once) -> Path:
    from ccr.report import build_report

    return build_once("report", lambda root: build_report(scored.corpus, root / "out").index)


@pytest.fixture(scope="session")
def browser():
    with chromium() as b:
        yield b
