"""``ccr train`` mistakes a user can make with paths, numbers and devices (issue 15): exit code 2 and
one line that names the offending path or value, never a traceback, and no empty run directory left."""

import pytest
import torch
from train_helpers import sets
from typer.testing import CliRunner

from ccr.cli import app


def _fails_with_one_line(args: list[str], *names: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, ["train", *args], env={"COLUMNS": "300"} | (env or {}))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert all(name in lines[0] for name in names), (names, lines[0])
    return lines[0]


def _set_args(**extra: object) -> list[str]:
    return [arg for s in sets(**extra) for arg in ("--set", s)]


@pytest.mark.parametrize(("option", "named"), [
    ("lr=nan", "lr (--lr): expected a finite number, got nan"),
    ("lr=inf", "lr (--lr): expected a finite number, got inf"),
    ("grad_clip=-inf", "grad_clip (--grad-clip): expected a finite number, got -inf"),
    ("betas=0.9,nan", "betas (--betas): expected a finite number, got nan"),
])
def test_non_finite_numbers_are_refused(tmp_path, synth_corpus, option, named):
    out = tmp_path / "run"
    _fails_with_one_line([str(synth_corpus), "--out", str(out), *_set_args(), "--set", option], named)
    assert not out.exists()


def test_a_config_that_is_a_directory_missing_or_not_toml(tmp_path, synth_corpus):
    invalid = tmp_path / "invalid.toml"
    invalid.write_text("lr = = 1\n")
    for config in (tmp_path, tmp_path / "missing.toml", invalid):
        _fails_with_one_line([str(synth_corpus), "--out", str(tmp_path / "run"), "--config", str(config)], str(config))
    assert not (tmp_path / "run").exists()


def test_an_out_that_is_a_file_under_a_file_or_unwritable(tmp_path, synth_corpus):
    afile = tmp_path / "afile"
    afile.write_text("not a run")
    _fails_with_one_line([str(synth_corpus), "--out", str(afile)], str(afile), "is not a directory")
    _fails_with_one_line([str(synth_corpus), "--out", str(afile / "run")], str(afile / "run"), f"{afile} is a file")
    # sysfs refuses new directories to everyone, root included (a chmod would not stop root)
    _fails_with_one_line([str(synth_corpus), "--out", "/sys/ccr-run"], "/sys/ccr-run", "cannot be written")
    assert afile.read_text() == "not a run"


def test_a_cuda_device_this_machine_lacks(tmp_path, synth_corpus):
    """``cuda:N`` with N GPUs, and a torchrun environment with one process more than GPUs, on any machine."""
    count = torch.cuda.device_count()
    out = tmp_path / "run"
    _fails_with_one_line([str(synth_corpus), "--out", str(out), *_set_args(), "--device", f"cuda:{count}"],
                         f"cuda:{count}", f"has {count} CUDA device")
    torchrun = {"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": str(count + 1)}
    _fails_with_one_line([str(synth_corpus), "--out", str(out), *_set_args(), "--device", "cuda"],
                         f"has {count} CUDA device", "--device cpu", env=torchrun)
    assert not out.exists()


def test_evaluate_on_a_cuda_device_this_machine_lacks(trained_run):
    count = torch.cuda.device_count()
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--device", f"cuda:{count}"],
                                env={"COLUMNS": "300"})
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert f"cuda:{count}" in lines[0] and f"has {count} CUDA device" in lines[0]
