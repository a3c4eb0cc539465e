"""``ccr.paths``: what ccr reads must be a regular file, where it writes must take a new file; each
refusal is one line naming the path. Tests run as root, where chmod stops nothing: an unwritable
place is ``/sys`` (sysfs refuses new entries to everyone), a blocked one a file where a directory belongs."""

import os
from pathlib import Path

import pytest

from ccr.errors import CcrError
from ccr.paths import (
    discard,
    output_dir,
    output_file,
    read_json,
    regular_file,
    regular_files,
)


def refused(call, *names: str) -> str:
    with pytest.raises(CcrError) as e:
        call()
    message = str(e.value)
    assert "\n" not in message and all(name in message for name in names), message
    return message


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


def test_only_regular_files_are_read(tmp_path, fifo, no_hang):
    good = tmp_path / "a.toml"
    good.write_text("x = 1\n")
    link = tmp_path / "link.toml"
    link.symlink_to(good)
    assert regular_file(good, "config file") == good and regular_file(link, "config file") == link
    refused(lambda: regular_file(fifo, "config file"), f"config file {fifo}", "not a regular file")
    refused(lambda: regular_file("/dev/zero", "config file"), "/dev/zero", "not a regular file")
    refused(lambda: regular_file(tmp_path, "config file"), str(tmp_path), "is a directory")
    refused(lambda: regular_file(good / "x", "config file"), str(good / "x"), "does not exist")
    assert regular_file(tmp_path, "source", directory_ok=True) == tmp_path
    refused(lambda: regular_file(fifo, "source", directory_ok=True), str(fifo), "give a file or directory")


def test_a_directory_scan_refuses_a_fifo_instead_of_skipping_it(tmp_path, fifo, no_hang):
    (tmp_path / "sub.toml").mkdir()
    good = tmp_path / "a.toml"
    good.write_text("")
    assert regular_files([good, tmp_path / "sub.toml"], "file") == [good]
    refused(lambda: regular_files([good, fifo], "features file"), f"features file {fifo}")


def test_damaged_json_is_one_line_with_the_fix(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"method": ')
    refused(lambda: read_json(path, "run file", fix="train again"), f"run file {path} is damaged", "train again")
    path.write_bytes(b"\xff\xfe")
    refused(lambda: read_json(path, "run file", fix="train again"), str(path), "not UTF-8 text; it is damaged")
    path.write_text('{"method": "baseline"}')
    assert read_json(path, "run file", fix="") == {"method": "baseline"}


def test_an_output_directory_is_made_or_refused_in_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    refused(lambda: output_dir(afile, "--out"), f"--out {afile} is not a directory", "it is a file")
    refused(lambda: output_dir(afile / "x" / "y", "--out"), str(afile / "x" / "y"), f"{afile} is a file")
    refused(lambda: output_dir("/sys/ccr-test-out/x", "--out"), "/sys/ccr-test-out/x", "cannot be written")
    assert afile.read_text() == "keep me"
    made = output_dir(tmp_path / "new" / "out", "--out")
    assert made == tmp_path / "new" and (tmp_path / "new" / "out").is_dir()
    assert output_dir(tmp_path / "new" / "out", "--out") is None  # it exists now
    discard(made)
    assert not (tmp_path / "new").exists()


def test_an_output_file_is_checked_without_making_anything(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert output_file(afile, "--plot") == afile  # an existing file is replaced
    assert output_file(tmp_path / "new" / "c.png", "--plot") == tmp_path / "new" / "c.png"
    assert not (tmp_path / "new").exists()
    refused(lambda: output_file(tmp_path, "--plot"), f"--plot {tmp_path} is a directory")
    refused(lambda: output_file(afile / "c.png", "--plot"), str(afile / "c.png"), f"{afile} is a file")
    refused(lambda: output_file(Path("/sys/c.png"), "--plot"), "/sys/c.png", "cannot be written")


@pytest.mark.parametrize("command", [["train", "{corpus}", "--out", "{tmp}/run"], ["translate", "{corpus}", "--lang", "de"],
                                     ["ingest", "{tmp}/new", "{corpus}/x.jsonl", "--format", "jsonl"],
                                     ["noise", "inject", "{corpus}", "--out", "{tmp}/noisy"]])
def test_a_config_that_is_a_device_or_a_fifo_is_refused_before_it_is_read(tmp_path, toy_corpus, fifo, cli_error,
                                                                           no_hang, command):
    args = [a.format(corpus=toy_corpus, tmp=tmp_path) for a in command]
    for config in ("/dev/zero", fifo):
        cli_error([*args, "--config", config], f"config file {config}", "not a regular file")
    assert not any(p.name in ("run", "new", "noisy") for p in tmp_path.iterdir())  # nothing made


def test_a_recipe_that_is_a_fifo_is_refused_before_it_is_read(fifo, cli_error, no_hang):
    cli_error(["pipeline", "run", fifo], f"recipe {fifo}", "not a regular file")
    cli_error(["pipeline", "run", "/dev/zero", "--dry-run"], "recipe /dev/zero", "not a regular file")
