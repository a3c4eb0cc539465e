"""SIGKILL during training, then the same command again: it continues from the last checkpoint
and ends with exactly the numbers of an uninterrupted run (fixed seed; RNG states, data order and
schedule are restored). A checkpoint every 2 steps makes the kill land mid-epoch most of the time."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from train_helpers import sets

from ccr.train.loop import train


def _history(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("samples_per_second")
    return rows


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, synth_corpus):
    args = sets(epochs=4, checkpoint_every=2)
    train(synth_corpus, tmp_path / "reference", sets=args, log=lambda _: None)

    run = tmp_path / "killed"
    code = f"from ccr.train.loop import train; train({str(synth_corpus)!r}, {str(run)!r}, sets={args!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().strip()):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["counters"]
    assert 1 <= killed_at["epoch"] < 4 and not killed_at["finished"]

    lines: list[str] = []
    train(synth_corpus, run, sets=args, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    assert _history(run) == _history(tmp_path / "reference")
    for name in ("best.pt", "last.pt"):
        a = torch.load(run / "checkpoints" / name, weights_only=False)["model"]
        b = torch.load(tmp_path / "reference" / "checkpoints" / name, weights_only=False)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((run / "run.json").read_text())
    assert info["finished"] and len(info["resumed"]) == 1
    assert os.environ["CCR_CACHE_DIR"]  # the subprocess shared the session's tiny-model cache
