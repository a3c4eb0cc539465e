"""Every numeric training option has a range (issue 15): a value outside it, or two options that do not
go together, is one line naming the key, the value and what is valid, refused before the run directory
exists; never a traceback from torch after the run started (``lr=-1``), nor a silent run on nonsense
(``embed_dim=0`` trained to validation 0.00, ``temperature=0`` and ``warmup=-1`` were accepted)."""

from __future__ import annotations

import dataclasses

import pytest
from train_helpers import sets
from typer.testing import CliRunner

from ccr.cli import app
from ccr.config import resolve
from ccr.errors import CcrError
from ccr.pipeline.recipe import load_recipe
from ccr.train.config import MethodConfig, TrainConfig, resolve_configs
from ccr.train.model.methods import METHODS, get
from ccr.train.ranges import Range, numeric_fields

CONFIGS = {"train": TrainConfig} | {name: get(name).Config for name in METHODS}


@pytest.mark.parametrize(("method", "options", "named"), [
    ("baseline", ["lr=-1"], ["lr=-1", "a number >= 0"]),
    ("baseline", ["betas=2,0.9"], ["betas=2,0.9", "each item must be a number in [0, 1)"]),
    ("baseline", ["dropout=1.5"], ["dropout=1.5", "[0, 1)"]),
    ("baseline", ["eval_batch_size=0"], ["eval_batch_size=0", "an integer >= 1"]),
    ("baseline", ["threads=-2"], ["threads=-2", "an integer >= 0"]),
    ("baseline", ["workers=-1"], ["workers=-1", "an integer >= 0"]),
    ("baseline", ["prefetch=0"], ["prefetch=0", "an integer >= 1"]),
    ("baseline", ["embed_dim=0"], ["embed_dim=0", "an integer >= 1"]),
    ("baseline", ["temperature=0"], ["temperature=0", "a number > 0"]),
    ("baseline", ["warmup=-1"], ["warmup=-1", "a number >= 0"]),
    ("baseline", ["w_en=0", "w_mt=0"], ["w_en=0, w_mt=0", "every loss weight is 0"]),
    ("nrccr", ["distill_temperature=0"], ["distill_temperature=0", "> 0"]),
    ("cl2cm", ["ot_iters=0"], ["ot_iters=0", ">= 1"]),
    ("dcot", ["w_mt=0"], ["w_mt=0", "> 0", "dcot judges the (visual, MT) pairs"]),
    ("dcot", ["confidence=soft"], ["confidence=soft", "loss=infonce"]),
    ("leccr", ["heads=3"], ["heads=3", "media_hidden=64"]),
    ("leccr", ["w_soft=1.5"], ["w_soft=1.5", "[0, 1]"]),
    ("rivrl", ["media_hidden=66"], ["media_hidden=66", "multiple of 4"]),
    ("rivrl", ["latent_share=-0.1"], ["latent_share=-0.1", "[0, 1]"]),
    ("rgtr", ["hidden=250"], ["hidden=250", "heads=8"]),
    ("rgtr", ["iou_alpha=2"], ["iou_alpha=2", "[0, 1]"]),
])
def test_an_option_out_of_range_is_one_line_before_the_run_directory(tmp_path, synth_corpus, method, options, named):
    out = tmp_path / "runs" / "run"
    args = ["train", str(synth_corpus), "--out", str(out), "--method", method]
    result = CliRunner().invoke(app, [*args, *(a for s in [*sets(), *options] for a in ("--set", s))],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert all(name in lines[0] for name in named), (named, lines[0])
    assert not (tmp_path / "runs").exists()


def _outside(r: Range, integer: bool) -> list[float]:
    step = 1 if integer else 0.5
    return [r.low if r.low_open else r.low - step] + ([] if r.high is None else [r.high if r.high_open else r.high + step])


def _inside(r: Range, integer: bool) -> list[float]:
    step = 1 if integer else 1e-3
    return [r.low + step * r.low_open] + ([] if r.high is None else [r.high - step * r.high_open])


@pytest.mark.parametrize("owner", CONFIGS)
def test_every_numeric_option_has_a_range_whose_edges_hold(owner):
    """Each numeric field of the shared config and of every method's, at and just past its range's edges."""
    cls = CONFIGS[owner]
    fields = numeric_fields(cls)
    assert set(fields) == set(cls.ranges)  # no field without a range, no stale entry
    defaults = cls()
    for name, integer in fields.items():
        r = cls.ranges[name]
        is_list = isinstance(getattr(defaults, name), list)
        for bad in _outside(r, integer):
            text = str(bad) if integer else f"{bad:g}"
            value = f"{text},{text}" if is_list else text
            with pytest.raises(CcrError) as refused:
                resolve(cls, {name: value})
            message = str(refused.value)
            assert message.startswith(f"{name}={value} is out of range") and r.describe(integer) in message, message
        for good in _inside(r, integer):
            assert resolve(cls, {name: [good, good] if is_list else good}) is not None


@pytest.mark.parametrize("method", METHODS)
def test_every_method_s_defaults_are_valid(method):
    train, cfg = resolve_configs(method, get(method).Config)
    assert isinstance(train, TrainConfig) and dataclasses.is_dataclass(cfg)


def test_a_numeric_option_without_a_range_cannot_be_built():
    @dataclasses.dataclass
    class Unranged(MethodConfig):
        strength: float = 1.0

    with pytest.raises(TypeError, match="Unranged.strength has no entry in its ranges table"):
        Unranged()


def test_a_recipe_with_an_option_out_of_range_is_refused_before_anything_runs(tmp_path):
    recipe = tmp_path / "pipeline.toml"
    recipe.write_text(f'[pipeline]\nwork_dir = "{tmp_path}"\n\n[[step]]\nstage = "train"\nid = "run"\n'
                      f'method = "baseline"\nlr = -1\n')
    with pytest.raises(CcrError, match=r"step 'run' \(train\): lr=-1 is out of range: expected a number >= 0"):
        load_recipe(recipe)
