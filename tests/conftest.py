"""Shared fixtures: an offline environment, one cache of tiny models, the toy corpus.

Tiny models and the corpora tests share are built once per test run, also when pytest-xdist runs
the suite in several processes: ``build_once`` builds into a directory all workers share, under a
file lock, and the others wait and reuse it. Tests that change a corpus get their own copy.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


BuildOnce = Callable[[str, Callable[[Path], Any]], Any]


def _shared_root(factory: pytest.TempPathFactory) -> Path:
    """One directory for the whole run: under xdist each worker's base temp sits inside it."""
    base = factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> BuildOnce:
    """``build_once(name, make)``: ``make(dir)`` runs once per test run, whichever worker asks first;
    every worker gets what it returned (kept with pickle; ``dir`` itself where it returned None).
    Treat what it built as read-only: tests that change it copy it first."""
    from filelock import FileLock

    root = _shared_root(tmp_path_factory)
    root.mkdir(parents=True, exist_ok=True)

    def build(name: str, make: Callable[[Path], Any]) -> Any:
        out, done = root / name, root / f"{name}.pickle"
        with FileLock(str(root / f"{name}.lock")):
            if not done.exists():
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                result = make(out)
                done.write_bytes(pickle.dumps(out if result is None else result))
        return pickle.loads(done.read_bytes())

    return build


@pytest.fixture(scope="session", autouse=True)
def ccr_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny models are cached here for the whole run (all workers), never in the user's ~/.cache;
    ``ccr.models`` builds each one under its own lock."""
    path = _shared_root(tmp_path_factory) / "ccr-cache"
    path.mkdir(parents=True, exist_ok=True)
    os.environ["CCR_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def toy_source(build_once: BuildOnce) -> Path:
    from ccr.testing.toy_corpus import write_toy_corpus

    return build_once("toy", write_toy_corpus)


@pytest.fixture(scope="session")
def _toy_corpus_master(build_once: BuildOnce, toy_source: Path) -> Path:
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions

    def make(dest: Path) -> Path:
        ingest("jsonl", toy_source / "captions.jsonl", dest / "corpus", options=RunOptions(progress=False))
        return dest / "corpus"

    return build_once("toy-corpus", make)


@pytest.fixture(scope="session")
def toy_demo(build_once: BuildOnce) -> tuple[Path, str]:
    """``ccr demo``'s own help example (``ccr demo ccr-demo``, the shipped toy models) run as written, once:
    the end-to-end tests share its directory (corpus, runs/baseline and runs/dcot, noisy copy, exports,
    report, proof.json) and its output. Read-only: a test that changes it copies it first."""
    from cli_examples import examples, run, working_dir

    def make(root: Path) -> tuple[Path, str]:
        [line] = examples(("demo",))
        with working_dir(root):
            result = run(line)
        assert result.exit_code == 0, result.output
        return root / line.split()[-1], result.output

    return build_once("toy-demo", make)


@pytest.fixture
def toy_corpus(_toy_corpus_master: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested toy corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(_toy_corpus_master, dest)
    return dest


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for every Ray test; workers can import the test helper stages."""
    import ray

    helpers = [str(Path(__file__).parent / "stages")]
    path = os.pathsep.join(helpers + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


@pytest.fixture
def no_hang(tmp_path: Path):
    """A read that blocks (a FIFO) or never ends (/dev/zero) fails the test instead of hanging it.

    On time-out the test's FIFOs are removed, then opened for writing and closed, so a reader
    blocked in a thread the exception cannot reach (a stage's worker) sees the end of the file and
    a retry finds no file: the test fails instead of waiting for ever.
    """
    def stop(*_: object) -> None:
        for fifo in [p for p in tmp_path.rglob("*") if p.is_fifo()]:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader waiting on it
                fd = None
            fifo.unlink()
            if fd is not None:
                os.close(fd)
        raise TimeoutError("blocked on a FIFO or a device")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cli_error():
    """``cli_error(args, *names)``: run ``ccr ARGS``; expect exit 2 and, last, one ``error:`` line naming every
    name (a stage command prints its resolved config before it)."""
    from typer.testing import CliRunner

    from ccr.cli import app

    def run(args: list[object], *names: str) -> str:
        result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert errors == lines[-1:], result.output
        assert all(name in errors[0] for name in names), (names, errors[0])
        return errors[0]

    return run
