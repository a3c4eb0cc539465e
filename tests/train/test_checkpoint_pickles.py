"""Checkpoints hold state dicts and plain values only: no ``ccr`` class is pickled into them.

So moving or renaming a ccr module can never break loading a run: the checkpoints of today's
trainer and those made before the package was split into layers (tests/fixtures/*) are read
as the raw pickle stream inside the torch zip, and every global it would import is listed.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"  # legacy (a963846) and pre-reorg (8a03d1d)
STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def pickled_globals(checkpoint: Path) -> set[str]:
    """``module.name`` of every global the checkpoint's pickle imports (GLOBAL, INST and STACK_GLOBAL)."""
    with zipfile.ZipFile(checkpoint) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        stream = archive.read(name)
    found, pushed, memo = set(), [], {}
    for op, arg, _ in pickletools.genops(stream):
        if op.name in ("GLOBAL", "INST"):
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
        if op.name in STRING_OPS:
            pushed.append(arg)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
    return found


def assert_no_ccr_class(checkpoint: Path) -> None:
    found = pickled_globals(checkpoint)
    assert "torch._utils._rebuild_tensor_v2" in found, "the inspector read no tensor: it missed the stream"
    assert not {g for g in found if g.startswith("ccr.")}, (checkpoint, sorted(found))


def test_a_new_runs_checkpoints_pickle_no_ccr_class(trained_run):
    for name in ("best.pt", "last.pt"):
        assert_no_ccr_class(trained_run / "checkpoints" / name)


@pytest.mark.parametrize("checkpoint", sorted(FIXTURES.glob("*/run-*/checkpoints/*.pt")),
                         ids=lambda p: str(p.relative_to(FIXTURES)))
def test_a_legacy_runs_checkpoints_pickle_no_ccr_class(checkpoint):
    assert_no_ccr_class(checkpoint)


@pytest.mark.parametrize("protocol", [2, 4])  # torch's default, and one that names globals on the stack
def test_the_inspector_sees_a_pickled_ccr_class(tmp_path, protocol):
    """A checkpoint that did pickle a ccr object would be caught: the tests above can fail."""
    import torch

    from ccr.train.run.checkpoint import RunDir

    path = tmp_path / "bad.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "run": RunDir(tmp_path)}, path, pickle_protocol=protocol)
    assert "ccr.train.run.checkpoint.RunDir" in pickled_globals(path)
