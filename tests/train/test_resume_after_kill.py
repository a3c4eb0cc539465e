"""SIGKILL during training, then the same command again: it continues from the last checkpoint
and ends with exactly the numbers of an uninterrupted run (fixed seed; RNG states, data order and
schedule are restored). A checkpoint every 2 steps makes the kill land mid-epoch most of the time."""

import json
import os

from train_helpers import same_run, sets, sigkill_after_first_epoch

from ccr.train.loop import train


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, synth_corpus):
    args = sets(epochs=4, checkpoint_every=2)
    train(synth_corpus, tmp_path / "reference", sets=args, log=lambda _: None)

    run = tmp_path / "killed"
    code = f"from ccr.train.loop import train; train({str(synth_corpus)!r}, {str(run)!r}, sets={args!r})"
    killed_at = sigkill_after_first_epoch(code, run)
    assert 1 <= killed_at["epoch"] < 4 and not killed_at["finished"]

    lines: list[str] = []
    train(synth_corpus, run, sets=args, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    same_run(run, tmp_path / "reference")
    info = json.loads((run / "run.json").read_text())
    assert info["finished"] and len(info["resumed"]) == 1
    assert os.environ["CCR_CACHE_DIR"]  # the subprocess shared the session's tiny-model cache
