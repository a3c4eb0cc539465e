"""Impossible options are refused before anything runs (``Stage.check``), not turned into a failure per row."""

import sys
from pathlib import Path

import pytest

from ccr.corpus.corpus import Corpus

sys.path.insert(0, str(Path(__file__).parent))


@pytest.mark.parametrize("args, named", [
    (["translate", "--lang", "de", "--models", "random", "--set", "beam_size=0"], "beam_size=0"),
    (["translate", "--lang", "de", "--models", "random", "--max-length", "-3"], "max_length=-3"),
    (["translate", "--lang", "de", "--models", "random", "--set", "min_length=20", "--max-length", "10"], "min_length=20"),
    (["backtranslate", "--lang", "de", "--models", "random", "--set", "beam_size=0"], "beam_size=0"),
    (["features", "--model", "tiny/clip", "--set", "fps=nan"], "fps (--fps): expected a finite number, got nan"),
    (["score", "--lang", "de", "--models", "random", "--set", "ot_eps=inf"],
     "ot_eps (--ot-eps): expected a finite number, got inf"),
])
def test_impossible_decoding_options_are_one_line_before_any_row(toy_corpus, args, named, cli_error):
    before = Corpus.open(toy_corpus).runs()
    command, rest = args[0], args[1:]
    cli_error([command, str(toy_corpus), *rest], named)
    corpus = Corpus.open(toy_corpus)
    assert corpus.runs() == before and corpus.failures().height == 0, "nothing ran, nothing failed"
