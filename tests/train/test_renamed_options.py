"""The translate-test options changed meaning with their names: the old names are refused with a hint, never read.

``translate_test`` / ``val_translate_test`` gave the native queries' share; ``translate_test_weight`` /
``val_translate_test_weight`` give the xx->en MT queries' share (NRCCR's ``sim_ratio``). A TOML
file or recipe written for the old meaning must stop with a line that names the new option and
how to convert, wherever the old name appears.
"""

from __future__ import annotations

import pytest

from ccr.errors import CcrError
from ccr.pipeline.recipe import load_recipe
from ccr.train.config import resolve_configs
from ccr.train.model.methods import get
from ccr.train.model.methods.nrccr import NrccrConfig

HINT = "{old} was renamed {new} and its meaning turned round"


def test_a_training_toml_with_the_old_name_is_refused_with_the_new_one(tmp_path):
    config = tmp_path / "nrccr.toml"
    config.write_text("[train]\nval_translate_test = 0.2\n")
    with pytest.raises(CcrError) as caught:
        resolve_configs("nrccr", NrccrConfig, config=config)
    message = str(caught.value)
    assert HINT.format(old="val_translate_test", new="val_translate_test_weight") in message
    assert "old X = new 1-X" in message and "\n" not in message


def test_nrccr_defaults_to_weighing_its_mt_queries_0_2_in_validation():
    train, _ = resolve_configs("nrccr", NrccrConfig)
    assert train.val_translate_test_weight == 0.2


def test_a_recipe_with_the_old_names_lists_each_with_its_hint(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[[step]]\nstage = "train"\nid = "nrccr-de"\nmethod = "nrccr"\nval_translate_test = 0.2\n\n'
                      '[[step]]\nstage = "evaluate"\nrun = "nrccr-de"\ntranslate_test = 0.5\n')
    with pytest.raises(CcrError) as caught:
        load_recipe(recipe)
    message = str(caught.value)
    assert ("step 'nrccr-de' (train): " + HINT.format(old="val_translate_test", new="val_translate_test_weight")
            in message)
    assert "step 'evaluate' (evaluate): " + HINT.format(old="translate_test", new="translate_test_weight") in message


def test_a_method_class_that_still_sets_translate_test_fails_when_defined():
    from ccr.train.model.methods.baseline import Baseline

    with pytest.raises(TypeError, match="translate_test: methods no longer pick their evaluation protocol"):
        type("OldMethod", (Baseline,), {"name": "old", "translate_test": 0.5})


def test_num_workers_is_refused_with_its_new_name_and_read_as_workers_from_a_recorded_run(tmp_path):
    from ccr.train.legacy import upgrade_train_config

    with pytest.raises(CcrError, match="^num_workers was renamed workers$"):
        resolve_configs("baseline", get("baseline").Config, sets=["num_workers=2"])
    assert upgrade_train_config({"num_workers": 0, "lr": 0.1}) == {"workers": 0, "lr": 0.1}
