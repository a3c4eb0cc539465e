"""Corpus paths that cannot be written: one line naming the path and the fix, exit 2, never a traceback.

Tests may run as root (CI does), where ``chmod`` does not stop a write: the chmod case is skipped
there, and the same refusals reach root through ``/sys``, where even root cannot make a directory, and
through ``read_only``, which makes the one call that opens a file for writing fail as the kernel fails
it on a read-only file, directory or mount.
"""

import errno
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.stages.runner import RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parents[1] / "stages"))
from upper_stage import STAGE, UpperConfig  # noqa: E402

OPTS = dict(batch_size=4, chunk_rows=8, progress=False)


def refused(corpus: Path, *names: str) -> str:
    with pytest.raises(CcrError) as e:
        run_stage(Corpus.open(corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
    message = str(e.value)
    assert "\n" not in message and all(n in message for n in names), message
    return message


def features_source(tmp_path: Path, corpus: Path) -> Path:
    from ccr.formats.bigfile import write_npz

    media_id = Corpus.open(corpus).table("media")["media_id"][0]
    write_npz(tmp_path / "npz", media_id, np.ones((1, 4), dtype=np.float32))
    return tmp_path / "npz"


def test_a_file_where_the_corpus_belongs(tmp_path, cli_error):
    path = tmp_path / "corpus"
    path.write_text("not a corpus")
    cli_error(["info", str(path)], str(path), "is a file")
    src = tmp_path / "c.jsonl"
    src.write_text('{"media_id": "a", "split": "train", "lang": "en", "text": "a dog"}\n')
    cli_error(["ingest", str(path / "inner"), str(src), "--format", "jsonl"], str(path), "is a file, not a directory")


def test_a_file_where_the_state_directory_belongs(toy_corpus, tmp_path, cli_error):
    src = features_source(tmp_path, toy_corpus)
    shutil.rmtree(toy_corpus / ".state")
    (toy_corpus / ".state").write_text("")
    cli_error(["import-features", str(toy_corpus), str(src), "--format", "npz", "--name", "imp"],
                   str(toy_corpus / ".state"), "is a file, not a directory")


def test_a_directory_where_the_manifest_lock_belongs(toy_corpus):
    lock = toy_corpus / ".state" / "manifest.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir(parents=True)
    refused(toy_corpus, str(lock), "is a directory")


def test_a_file_where_a_table_directory_belongs(toy_corpus):
    (toy_corpus / "captions.upper").write_text("")
    message = refused(toy_corpus, str(toy_corpus / "captions.upper"), "is a file, not a directory")
    assert Corpus.open(toy_corpus).runs()[-1]["status"] == f"failed: CcrError: {message}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; test_an_unwritable_place covers the branch")
def test_a_read_only_corpus(toy_corpus, tmp_path, cli_error):
    src = features_source(tmp_path, toy_corpus)
    for path in [toy_corpus, *toy_corpus.rglob("*")]:
        if path.is_dir():
            path.chmod(0o555)
    try:
        cli_error(["import-features", str(toy_corpus), str(src), "--format", "npz", "--name", "imp"],
                       str(toy_corpus), "make it writable")
    finally:
        for path in [toy_corpus, *toy_corpus.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)


def test_an_unwritable_place(tmp_path, cli_error):
    place = Path("/sys/ccr-test-corpus")
    try:
        place.mkdir()
    except PermissionError:
        pass
    else:
        place.rmdir()
        pytest.skip("/sys accepts new directories here: no unwritable place to try")
    src = tmp_path / "c.jsonl"
    src.write_text('{"media_id": "a", "split": "train", "lang": "en", "text": "a dog"}\n')
    cli_error(["ingest", str(place / "corpus"), str(src), "--format", "jsonl"], str(place), "make it writable")


def read_only(monkeypatch, owner: object, name: str, place: Path, code: int = errno.EACCES) -> None:
    """``owner.name``, a call that opens a file, fails to open one at or under ``place`` for writing, with
    the ``OSError`` the kernel gives for a read-only file or directory (EACCES) or mount (EROFS); reads pass."""
    real = getattr(owner, name)

    def opening(path, mode=os.O_RDONLY, *rest, **kwargs):
        writes = "w" in mode if isinstance(mode, str) else mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writes and (Path(path) == place or place in Path(path).parents):
            raise OSError(code, os.strerror(code), str(path))
        return real(path, mode, *rest, **kwargs)

    monkeypatch.setattr(owner, name, opening)


def data_files(corpus: Path) -> dict[str, bytes]:
    """Every file of the corpus but its lock files (they name the process that last took them) and
    manifest (where a failed run is recorded)."""
    return {str(p.relative_to(corpus)): p.read_bytes() for p in corpus.rglob("*")
            if p.is_file() and p.name != "manifest.json" and p.suffix != ".lock"
            and "locks" not in p.relative_to(corpus).parts}


def import_refused(corpus: Path, tmp_path: Path, cli_error, monkeypatch, path: Path) -> str:
    """``ccr import-features`` is refused in one line naming ``path`` and leaves no data behind: once the
    path is writable again the same command imports everything."""
    args = ["import-features", corpus, features_source(tmp_path, corpus), "--format", "npz", "--name", "imp"]
    before = data_files(corpus)
    message = cli_error(args, str(path), "make it writable")
    after = data_files(corpus)
    after.pop("features/imp/meta.json", None)  # the plan's claim of the set, whole; a rerun rewrites it
    assert after == before, "no shard, temporary or marker is left behind"
    monkeypatch.undo()
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert len(Corpus.open(corpus).features("imp")) == 1
    return message


def test_a_read_only_lock_file(toy_corpus, tmp_path, cli_error, monkeypatch):
    lock = toy_corpus / ".state" / "locks" / "import-features.lock"
    read_only(monkeypatch, os, "open", lock)
    runs = len(Corpus.open(toy_corpus).runs())
    import_refused(toy_corpus, tmp_path, cli_error, monkeypatch, lock)
    assert len(Corpus.open(toy_corpus).runs()) == runs + 1, "refused before its run was recorded; the rerun is"


def test_a_shard_write_into_a_read_only_table_directory(toy_corpus, tmp_path, cli_error, monkeypatch):
    """The plan claims the set (its meta.json) first; the directory turns read-only before the shard write."""
    import pyarrow

    table = toy_corpus / "features" / "imp"
    table.mkdir(parents=True)
    read_only(monkeypatch, pyarrow, "OSFile", table)
    message = import_refused(toy_corpus, tmp_path, cli_error, monkeypatch, table).removeprefix("error: ")
    failed, complete = [r["status"] for r in Corpus.open(toy_corpus).runs()[-2:]]
    assert (failed, complete) == (f"failed: CcrError: {message}", "complete")


def test_a_read_only_manifest_lock(toy_corpus, tmp_path, cli_error, monkeypatch):
    lock = toy_corpus / ".state" / "manifest.lock"
    read_only(monkeypatch, os, "open", lock, errno.EROFS)
    runs = len(Corpus.open(toy_corpus).runs())
    import_refused(toy_corpus, tmp_path, cli_error, monkeypatch, lock)
    assert len(Corpus.open(toy_corpus).runs()) == runs + 1, "the refused run could record nothing; the rerun did"
