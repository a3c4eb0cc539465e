"""Rebuild the toy models that ``--models toy`` ships (src/ccr/testing/toy_models), from scratch.

Run: .venv/bin/python scripts/learn_toy_models.py [--only mt|clip|describer] [--out DIR]

Bit for bit the shipped files on the same machine, thread count (each learner uses one) and torch
version; not part of the test suite (it takes minutes). Every learner trains only on
``ccr.testing.learn.scenes.learning_scenes``, whose contents no demo or test corpus shows.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from ccr.models import TOY_DIR

LEARNERS = ("mt", "clip", "describer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=LEARNERS, action="append", help="learn only these (repeatable)")
    parser.add_argument("--out", type=Path, default=TOY_DIR, help=f"where the model directories go (default {TOY_DIR})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.only or LEARNERS:
        start = time.perf_counter()
        written = importlib.import_module(f"ccr.testing.learn.{name}").learn(args.out, seed=args.seed)
        print(f"{name}: {', '.join(p.name for p in written)} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
