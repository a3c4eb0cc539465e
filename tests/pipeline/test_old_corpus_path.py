"""Scripts written before the reorganisation import the corpus from ``ccr.pipeline.corpus``."""

from __future__ import annotations

import ccr.corpus.corpus as current
import ccr.pipeline.corpus as old


def test_the_old_path_names_the_same_objects():
    for name in old.__all__:
        assert getattr(old, name) is getattr(current, name), name


def test_a_corpus_opened_through_the_old_path_is_a_corpus(tmp_path):
    from ccr.pipeline.corpus import Corpus

    corpus = Corpus.open(tmp_path / "c", create=True)
    assert isinstance(corpus, current.Corpus)
    assert isinstance(Corpus.open(tmp_path / "c"), current.Corpus)
