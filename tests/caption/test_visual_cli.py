"""The three commands parse their options into the stages' configs and run them."""

from __future__ import annotations

from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus


def test_features_caption_and_slots_commands(toy_corpus):
    runner = CliRunner()
    corpus = str(toy_corpus)
    result = runner.invoke(app, ["features", corpus, "--model", "tiny/clip", "--variant", "patches",
                                 "--device", "cpu", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "features: 5 rows in, 5 features/clip-patches" in result.output
    result = runner.invoke(app, ["caption", corpus, "--model", "tiny/llava", "--prompt", "objects", "--prompt", "scene",
                                 "--max-new-tokens", "6", "--batch-size", "2", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "caption: 3 rows in, 6 descriptions, 0 failed" in result.output
    result = runner.invoke(app, ["slots", corpus, "--k", "3", "--embedder", "tiny/minilm", "--set", "min_chars=1"])
    assert result.exit_code == 0, result.output
    assert "features/slots-k3-minilm" in result.output
    assert Corpus.open(toy_corpus).runs()[-1]["config"]["min_chars"] == 1
    result = runner.invoke(app, ["caption", corpus, "--model", "tiny/llava", "--prompt", "story"])
    assert result.exit_code == 2 and "unknown prompt 'story'" in result.output and "Traceback" not in result.output
