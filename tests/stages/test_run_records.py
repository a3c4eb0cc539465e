"""SIGTERM and SIGKILL of a real ``ccr`` process: exit status, message and the manifest's run record.

``upper_cli.py`` is the real command line with the test stage registered; ``UPPER_PAUSE`` holds a
commit between its shard files and its marker, so each signal lands at a known point.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.stages.runner import RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parent))
from test_runner import OPTS, assert_same, snapshot  # noqa: E402
from upper_stage import STAGE, UpperConfig  # noqa: E402


def upper_command(corpus: Path, *options: str) -> list[str]:
    """``ccr upper CORPUS --delay 0.05 OPTIONS`` as a process runs it."""
    return [sys.executable, str(Path(__file__).parent / "upper_cli.py"), "upper", str(corpus), "--delay", "0.05",
            *options]


def start(corpus: Path, go: Path, at: int, *options: str) -> subprocess.Popen:
    """``ccr upper CORPUS OPTIONS``, held before its ``at``-th marker until ``go`` exists."""
    env = {**os.environ, "UPPER_PAUSE": str(go), "UPPER_PAUSE_AT": str(at)}
    proc = subprocess.Popen(upper_command(corpus, *options), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = go.with_name(go.name + ".ready")
    deadline = time.time() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the run never reached the marker it should pause at"
        time.sleep(0.02)
    return proc


def _records(corpus: Path) -> list[dict]:
    return [r for r in Corpus.open(corpus).runs() if r["stage"] == "upper"]


def _committed(corpus: Path, run_id: str) -> int:
    return sum(c.inputs for c in Corpus.open(corpus).commits("upper") if c.run == run_id)


def test_sigterm_finishes_the_commit_in_flight_records_the_run_and_exits_143(toy_corpus, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(toy_corpus, clean)
    run_stage(Corpus.open(clean), STAGE, UpperConfig(), RunOptions(**OPTS))
    go = tmp_path / "go"
    proc = start(toy_corpus, go, at=3)
    record = _records(toy_corpus)[-1]
    assert record["status"] == "running" and record["pid"] == proc.pid, "a run is recorded when it starts"
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the handler runs while the commit waits; the commit must still finish
    go.write_text("")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "terminated: what was finished is kept (committed shards, checkpoints); run the same command again to resume"
    record = _records(toy_corpus)[-1]
    assert record["status"] == "interrupted" and record["ended"]
    assert record["rows_in"] == _committed(toy_corpus, record["id"]) >= 3 * 8, "the held third chunk was committed"
    assert run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS)).rows_in > 0
    assert_same(snapshot(clean), snapshot(toy_corpus))


def test_a_sigkilled_run_shows_as_killed_with_what_it_committed(toy_corpus, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(toy_corpus, clean)
    run_stage(Corpus.open(clean), STAGE, UpperConfig(), RunOptions(**OPTS))
    proc = start(toy_corpus, tmp_path / "go", at=3)  # two chunks committed, the third's shard on disk
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = _records(toy_corpus)[-1]
    assert killed["status"] == "running", "nothing could update the record of a SIGKILLed run"
    assert _committed(toy_corpus, killed["id"]) == 2 * 8
    result = CliRunner().invoke(app, ["info", str(toy_corpus)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "│ killed " in x)
    cells = [c.strip() for c in line.split("│")]
    assert cells[1:3] == ["upper", "killed"] and cells[4] == "16", line  # stage, status, ended, rows in
    run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
    closed = next(r for r in _records(toy_corpus) if r["id"] == killed["id"])
    assert closed["status"] == "killed" and closed["rows_in"] == 16, "the next run writes the killed record down"
    assert _records(toy_corpus)[-1]["status"] == "complete"
    assert_same(snapshot(clean), snapshot(toy_corpus))
