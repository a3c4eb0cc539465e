"""``ccr import-features`` reads only regular files: a FIFO or device where a feature file, id file or
video2frames belongs is refused in one line naming it, before it is opened (a FIFO would block
for ever), and a damaged npz costs its own row, not the run."""

import os

import numpy as np
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.formats.bigfile import write_bigfile, write_npy_features, write_npz


def media_ids(corpus):
    return sorted(Corpus.open(corpus).table("media")["media_id"].to_list())[:2]


def test_an_npz_directory_holding_a_fifo(toy_corpus, tmp_path, cli_error, no_hang):
    first, second = media_ids(toy_corpus)
    write_npz(tmp_path / "npz", first, np.ones((2, 4), dtype=np.float32))
    os.mkfifo(tmp_path / "npz" / f"{second}.npz")
    cli_error(["import-features", toy_corpus, tmp_path / "npz", "--format", "npz", "--name", "z"],
              f"features file {tmp_path / 'npz' / second}.npz", "not a regular file")


def test_a_damaged_npz_is_a_failure_row_and_the_others_are_imported(toy_corpus, tmp_path):
    first, second = media_ids(toy_corpus)
    write_npz(tmp_path / "npz", first, np.ones((2, 4), dtype=np.float32))
    (tmp_path / "npz" / f"{second}.npz").write_bytes(b"not a zip")
    result = CliRunner().invoke(app, ["import-features", str(toy_corpus), str(tmp_path / "npz"), "--format", "npz", "--name", "z"])
    assert result.exit_code == 0 and "1 failed" in result.output, result.output
    corpus = Corpus.open(toy_corpus)
    assert corpus.features("z").ids() == [first]
    reasons = corpus.failures()["reason"].to_list()
    assert len(reasons) == 1 and f"{second}.npz: not a readable .npz file" in reasons[0]


def test_bigfile_and_npy_parts_that_are_no_regular_files(toy_corpus, tmp_path, cli_error, no_hang):
    ids = media_ids(toy_corpus)
    big = tmp_path / "big"
    write_bigfile(big, ids, np.ones((2, 4), dtype=np.float32))
    os.mkfifo(big / "video2frames.txt")
    cli_error(["import-features", toy_corpus, big, "--format", "bigfile", "--name", "b"],
              f"video2frames file {big / 'video2frames.txt'}", "not a regular file")
    (big / "video2frames.txt").unlink()
    (big / "id.txt").unlink()
    os.mkfifo(big / "id.txt")
    cli_error(["import-features", toy_corpus, big, "--format", "bigfile", "--name", "b"], str(big / "id.txt"), "not a regular file")
    write_npy_features(tmp_path / "f.npy", tmp_path / "ids.txt", ids, np.ones((2, 4), dtype=np.float32))
    cli_error(["import-features", toy_corpus, tmp_path / "f.npy", "--format", "npy", "--name", "n", "--ids", "/dev/zero"],
              "id file /dev/zero", "not a regular file")
    cli_error(["import-features", toy_corpus, "/dev/zero", "--format", "npy", "--name", "n", "--ids", tmp_path / "ids.txt"],
              "source /dev/zero", "not a regular file")
