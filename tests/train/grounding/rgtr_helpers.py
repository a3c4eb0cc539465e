"""Settings shared by the RGTR tests (imported by name: the test folders have no __init__)."""

from __future__ import annotations

# A small RGTR that learns the synthetic corpus in seconds on one thread.
TINY_RGTR = {"text_tower": "tiny/bert", "hidden": 32, "heads": 2, "ffn": 64, "enc_layers": 1, "dec_layers": 2,
             "num_queries": 6, "batch_size": 16, "lr": 2e-3, "input_dropout": 0.1, "progress": False, "threads": 1}


def rgtr_sets(**extra: object) -> list[str]:
    return [f"{k}={v}" for k, v in (TINY_RGTR | extra).items()]
