"""Corpus paths that cannot be written: one line naming the path and the fix, exit 2, never a traceback.

Tests may run as root, where ``chmod`` does not stop a write: the chmod case is skipped there, and
the same permission branch is reached through ``/sys``, where even root cannot make a directory.
"""

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

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
