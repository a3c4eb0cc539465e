"""No method name in the trainer's shared code: what only one method knows lives in its module.

The loop, data, towers, tasks and evaluation never ask which method runs (``if method == "rivrl"``
is how facts of one method leaked into shared code before); a method says what it needs through
class attributes instead. This reads every string literal of ``ccr/train`` outside
``model/methods/`` and fails on one that is a method's name, unless it is listed below with why.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import ccr.train
from ccr.train.model.methods import METHODS

TRAIN = Path(ccr.train.__file__).parent
METHODS_DIR = TRAIN / "model" / "methods"

# (file under ccr/train, name) -> how many times it may appear, and why it is not a method test.
ALLOWED: Counter[tuple[str, str]] = Counter({
    # video_encoder = "rivrl" names RIVRL's visual tower, a choice for every method: TrainConfig's
    # Literal, the ENCODERS table that builds it, and the tower checking its own widths.
    ("config.py", "rivrl"): 1,
    ("model/video/encoders.py", "rivrl"): 1,
    ("model/video/rivrl.py", "rivrl"): 1,
    # train()'s default method, as ccr train's --method default.
    ("run/loop.py", "baseline"): 1,
})


def method_names_in_shared_code() -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for path in sorted(TRAIN.rglob("*.py")):
        if METHODS_DIR in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in METHODS:
                found[(path.relative_to(TRAIN).as_posix(), node.value)] += 1
    return found


def test_no_method_name_in_shared_trainer_code():
    extra = method_names_in_shared_code() - ALLOWED
    assert not extra, f"method names in shared trainer code (move the fact into the method's class): {dict(extra)}"


def test_the_scan_sees_the_allowed_names():
    """A scan that read nothing would pass the test above: it must find the listed exceptions."""
    assert set(ALLOWED) <= set(method_names_in_shared_code())
