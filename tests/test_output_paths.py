"""Output paths a user gives that cannot be written: one line naming the path and the fix, exit 2,
never a traceback, and whatever was there is left as it was.

Tests run as root, where chmod stops nothing: the unwritable place is ``/sys`` (sysfs refuses new
entries even to root), the blocked ones a file where a directory belongs and a path under a file.
"""

from pathlib import Path

import pytest

from ccr.errors import CcrError
from ccr.filter.score import summarize

UNWRITABLE = Path("/sys/ccr-test-out")


def blocked(tmp_path: Path) -> list[tuple[Path, str]]:
    """(output path, what the message says) for a file in the way, a path under it, and /sys."""
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    return [(afile, "is not a directory (it is a file)"), (afile / "sub", f"({afile} is a file)"),
            (UNWRITABLE / "out", "cannot be written")]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "nrccr"])
def test_export_to_a_place_that_cannot_be_written(toy_corpus, tmp_path, cli_error, fmt):
    for dest, says in blocked(tmp_path):
        cli_error(["export", str(toy_corpus), "--out", str(dest), "--format", fmt], f"export destination {dest}", says)
    assert (tmp_path / "afile").read_text() == "keep me"


def test_noise_inject_into_a_place_that_cannot_be_written(toy_corpus, tmp_path, cli_error):
    for out, says in blocked(tmp_path):
        cli_error(["noise", "inject", str(toy_corpus), "--out", str(out), "--rate", "0.1"], f"--out {out}", says)
    assert (tmp_path / "afile").read_text() == "keep me"
    assert not list(tmp_path.glob(".tmp-*"))  # no half copy left beside it


def test_report_into_a_place_that_cannot_be_written(toy_corpus, tmp_path, cli_error):
    for out, says in blocked(tmp_path):
        cli_error(["report", str(toy_corpus), "--out", str(out)], f"--out {out}", says)
    assert (tmp_path / "afile").read_text() == "keep me"


def test_a_score_plot_that_cannot_be_written_is_refused_before_anything_is_read(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for plot, says in [(tmp_path, "is a directory"), (afile / "s.png", f"{afile} is a file"),
                       (UNWRITABLE / "s.png", "cannot be written")]:
        with pytest.raises(CcrError) as e:
            summarize(tmp_path / "no-corpus", ["de"], plot=plot)  # the plot is checked before the corpus opens
        assert "\n" not in str(e.value) and f"--plot {plot}" in str(e.value) and says in str(e.value), e.value


def test_demo_into_a_place_that_cannot_be_written(tmp_path, cli_error):
    for dest, says in blocked(tmp_path):
        cli_error(["demo", str(dest)], f"demo directory {dest}", says)
    assert (tmp_path / "afile").read_text() == "keep me"
