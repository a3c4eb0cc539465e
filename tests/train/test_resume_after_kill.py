"""SIGKILL during training, then the same command again: it continues from the last checkpoint
and ends with exactly the numbers of an uninterrupted run (fixed seed; every random stream of the
data path, the data order and the schedule are restored). 400 tuples in batches of 32 make 12 steps
an epoch, and a checkpoint every 4 steps puts two of them inside each epoch.

The runs are pinned to the CPU, where training is bit-reproducible; CUDA kernels need not be."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import same_run, sets, sigkill_after_first_epoch, sigkill_at_step

from ccr.train.run.loop import train

ARGS = sets(epochs=3, checkpoint_every=4, device="cpu")
LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synth_corpus):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(synth_corpus, out, sets=ARGS, log=lambda _: None)
    return out


def _resume(run, corpus, args=ARGS):
    lines: list[str] = []
    train(corpus, run, sets=args, log=lines.append)
    assert sum(line.startswith("resuming") for line in lines) == 1
    return lines


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, synth_corpus, reference):
    run = tmp_path / "killed"
    killed_at = sigkill_after_first_epoch(f"from ccr.train.run.loop import train; train({str(synth_corpus)!r}, "
                                          f"{str(run)!r}, sets={ARGS!r})", run)
    assert 1 <= killed_at["epoch"] < 3 and not killed_at["finished"]

    _resume(run, synth_corpus)
    same_run(run, reference)
    info = json.loads((run / "run.json").read_text())
    assert info["finished"] and len(info["resumed"]) == 1


def test_sigkill_mid_epoch_after_a_checkpoint_resumes_at_that_batch(tmp_path, synth_corpus, reference):
    """Killed as step 18 begins: ``last.pt`` holds step 16 (4 batches into epoch 2) and step 17 is lost.
    The resume skips those 4 batches and draws the same dropout masks as the uninterrupted run."""
    run = tmp_path / "killed"
    killed_at = sigkill_at_step(f"from ccr.train.run.loop import train; train({str(synth_corpus)!r}, {str(run)!r}, "
                                f"sets={ARGS!r})", run, 17)
    assert (killed_at["epoch"], killed_at["step"], killed_at["step_in_epoch"]) == (1, 16, 4)

    lines = _resume(run, synth_corpus)
    assert not any(line.startswith("note:") for line in lines)
    same_run(run, reference)


def test_a_checkpoint_of_an_earlier_version_resumes_with_a_note(tmp_path):
    """tests/fixtures/legacy/run-killed: written by a963846, killed 4 steps into epoch 4, no ``version``."""
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    shutil.copytree(LEGACY / "corpus", corpus)
    shutil.copytree(LEGACY / "run-killed", run)
    before = (run / "metrics.jsonl").read_text().splitlines()
    args = sets(embed_dim=32, media_hidden=32, batch_size=16, epochs=5, checkpoint_every=2, device="cpu")

    lines = _resume(run, corpus, args)
    notes = [line for line in lines if line.startswith("note:")]
    assert len(notes) == 1 and str(run / "checkpoints" / "last.pt") in notes[0] and "\n" not in notes[0]
    after = (run / "metrics.jsonl").read_text().splitlines()
    assert after[:3] == before and [json.loads(line)["epoch"] for line in after] == [1, 2, 3, 4, 5]
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert state["version"] == 2 and state["counters"]["finished"]


def test_sigterm_stops_training_with_one_line_and_exit_143_then_resumes_to_the_same_numbers(
        tmp_path, synth_corpus, reference):
    """A scheduler stops a job with SIGTERM: ``ccr train`` ends like Ctrl-C (one line, 128 + 15) and keeps
    its checkpoints, so the same command resumes to the uninterrupted run's numbers."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "terminated"
    command = [sys.executable, "-c", "from ccr.cli import main; main()", "train", str(synth_corpus), "--out", str(run)]
    for item in ARGS:
        command += ["--set", item]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().strip()):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("terminated: ") and "Traceback" not in err

    _resume(run, synth_corpus)
    same_run(run, reference)


def test_loader_workers_give_the_same_run_and_a_killed_run_with_workers_resumes_to_it(tmp_path, synth_corpus,
                                                                                      reference):
    """Two loader workers collate the batches of the main process in the same order (weights and metrics
    bit-identical to the workers=0 reference), and a run with workers killed mid-epoch, with batches
    prefetched that no step took, resumes at its checkpoint's batch to the uninterrupted run's numbers."""
    args = [*ARGS, "workers=2"]
    uninterrupted = tmp_path / "uninterrupted"
    lines: list[str] = []
    train(synth_corpus, uninterrupted, sets=args, log=lines.append)
    assert "2 loader workers collate batches, 2 ahead each" in lines
    same_run(uninterrupted, reference)

    run = tmp_path / "killed"
    killed_at = sigkill_at_step(f"from ccr.train.run.loop import train; train({str(synth_corpus)!r}, {str(run)!r}, "
                                f"sets={args!r})", run, 17)
    assert (killed_at["epoch"], killed_at["step"], killed_at["step_in_epoch"]) == (1, 16, 4)
    _resume(run, synth_corpus, args)
    same_run(run, uninterrupted)
