"""``--device``: one rule for every stage, whichever library runs the model."""

from __future__ import annotations

import pytest

from ccr.errors import CcrError
from ccr.stages.device import resolve_device, torch_settings


@pytest.mark.parametrize(("choice", "cuda", "mps", "expected"), [
    ("auto", 0, None, "cpu"), ("auto", 2, None, "cuda"), ("auto", 0, True, "mps"), ("auto", 1, True, "cuda"),
    ("cpu", 1, None, "cpu"), ("cuda", 1, None, "cuda"), ("cuda:1", 2, None, "cuda:1"), ("mps", 0, True, "mps"),
])
def test_auto_takes_the_best_device_here_and_explicit_names_pass(choice, cuda, mps, expected):
    assert resolve_device(choice, cuda, mps) == expected


@pytest.mark.parametrize(("choice", "cuda", "mps", "message"), [
    ("tpu", 1, None, "--device 'tpu': use auto, cpu, cuda, cuda:N$"),
    ("tpu", 1, False, "--device 'tpu': use auto, cpu, cuda, cuda:N or mps$"),
    ("mps", 1, None, "--device 'mps': use auto, cpu, cuda, cuda:N$"),
    ("mps", 0, False, "MPS is not available here"),
    ("cpu:0", 0, None, "--device 'cpu:0'"), ("cuda:x", 1, None, "--device 'cuda:x'"),
    ("cuda", 0, None, "no CUDA device is visible here; use --device cpu or auto"),
    ("cuda:2", 2, None, r"this machine has 2 CUDA devices \(cuda:0..cuda:1\)"),
])
def test_a_device_this_machine_or_library_lacks_is_one_line_before_any_model_loads(choice, cuda, mps, message):
    with pytest.raises(CcrError, match=message):
        resolve_device(choice, cuda, mps)


def test_torch_settings_pick_the_dtype_of_the_device():
    device, dtype = torch_settings("cpu", "auto")
    assert (device, dtype) == ("cpu", "float32")
    assert torch_settings("cpu", "bfloat16") == ("cpu", "bfloat16")
    with pytest.raises(CcrError, match="dtype 'half'"):
        torch_settings("cpu", "half")
