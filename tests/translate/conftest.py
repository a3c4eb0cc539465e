"""Fixtures for the translation tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from translate_helpers import run  # noqa: E402


@pytest.fixture
def translated(toy_corpus: Path) -> Path:
    """The toy corpus with tiny-model German MT rows, made with default options."""
    run("translate", toy_corpus, lang="de")
    return toy_corpus
