"""A trained run resumes after its corpus was compacted: the corpus fingerprint it records counts
chunks, which a compaction keeps, not marker files."""

import shutil
import sys
from pathlib import Path

from ccr.corpus import compact as compaction
from ccr.corpus.corpus import Corpus
from ccr.stages.runner import RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
sys.path.insert(0, str(Path(__file__).parents[1] / "stages"))
from train_helpers import sets  # noqa: E402
from upper_stage import STAGE, UpperConfig  # noqa: E402


def test_a_trained_run_resumes_after_a_compaction(build_once, tmp_path, monkeypatch):
    from ccr.testing.synthetic import write_synthetic_corpus
    from ccr.train.run.loop import train

    corpus = tmp_path / "corpus"
    shutil.copytree(build_once("synth", write_synthetic_corpus), corpus)
    monkeypatch.setattr(compaction, "AUTO_MIN_COMMITS", 10**9)  # leave the small commits for the test
    run_stage(Corpus.open(corpus), STAGE, UpperConfig(allow_stars=True),
              RunOptions(batch_size=64, chunk_rows=64, progress=False))
    commits = len(Corpus.open(corpus).commits())
    run = tmp_path / "run"
    train(corpus, run, sets=sets(epochs=1, checkpoint_every=4, device="cpu", mt_model="synth-mt"), log=lambda _: None)
    [done] = compaction.compact(Corpus.open(corpus), "upper")
    assert done.merged > 2 and len(Corpus.open(corpus).commits()) < commits
    lines: list[str] = []
    train(corpus, run, sets=sets(epochs=2, checkpoint_every=4, device="cpu", mt_model="synth-mt"), log=lines.append)
    assert sum(line.startswith("resuming") for line in lines) == 1
