"""Grounding is a task of its own: the method names it, and nothing offers a grounding run retrieval's API."""

from __future__ import annotations

import pytest

import ccr.train
from ccr.errors import CcrError
from ccr.train import tasks
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.model.methods import METHODS
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import GroundingMethod, RetrievalMethod
from ccr.train.tasks.grounding import Grounding
from ccr.train.tasks.retrieval import Retrieval

QUIET = {"device": "cpu", "log": lambda _: None}


def test_every_method_names_a_task_and_rgtr_has_no_retrieval_inference():
    for name in METHODS:
        cls = get_method(name)
        expected = Grounding if issubclass(cls, GroundingMethod) else Retrieval
        assert isinstance(tasks.of(cls), expected), name
    rgtr = get_method("rgtr")
    assert not issubclass(rgtr, RetrievalMethod)
    assert not any(hasattr(rgtr, name) for name in ("encode_queries", "encode_gallery", "prepare_run", "evaluate_run"))


def test_a_grounding_run_refuses_retrieval_loading_and_options(rgtr_run):
    with pytest.raises(CcrError, match="rgtr run \\(grounding\\).*ccr evaluate") as refused:
        ccr.train.load(rgtr_run)
    assert "\n" not in str(refused.value)
    with pytest.raises(CcrError, match="apply to retrieval runs only"):
        evaluate_run(rgtr_run, gallery="split", **QUIET)


def test_a_retrieval_run_refuses_grounding_options(trained_run):
    with pytest.raises(CcrError, match="--queries applies to grounding runs only"):
        evaluate_run(trained_run, queries="mt", **QUIET)
