"""``ccr train CORPUS --out RUN``: one option per ``TrainConfig`` field; a method's own options go
through ``--set`` (one namespace, routed by ``ccr.train.config``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ccr.commands.build import config_params, corpus_param, make_command, param
from ccr.commands.common import console, print_config, with_examples
from ccr.commands.fields import collect, field_options, overrides
from ccr.printing import say

DOC = "Train a retrieval model on a corpus (torchrun --nproc-per-node N $(which ccr) train ... for DDP)."
EXAMPLES = ("ccr train ccr-demo/corpus --out ccr-demo/runs/mine --method dcot --lang de --text-tower toy/mclip-text "
            "--epochs 2",
            "ccr train ccr-demo/corpus --out ccr-demo/runs/nrccr --method nrccr --lang de,fr --text-tower "
            "toy/mclip-text --epochs 1")


def train_command() -> Callable[..., None]:
    from ccr.train.config import TrainConfig
    from ccr.train.model.methods import names

    fields = field_options(TrainConfig)
    params = [corpus_param(),
              param("out_dir", Annotated[Path, typer.Option(
                  "--out", "-o", help="run directory; resumed if it holds a checkpoint")]),
              param("method", Annotated[str, typer.Option(
                  help=f"training method (one of: {', '.join(names())}); its own options: --set KEY=VALUE")],
                    "baseline"),
              *[p for _, p in fields],
              param("fresh", Annotated[bool, typer.Option(
                  help="start over, discarding checkpoints already in --out")], False),
              *config_params()]

    def handle(kwargs: dict[str, Any]) -> None:
        from ccr.train.run.loop import train

        method = kwargs["method"]
        values = collect([s for s, _ in fields], kwargs)
        result = train(kwargs["corpus"], kwargs["out_dir"], method=method, config=kwargs["config"],
                       sets=kwargs["set_"], fresh=kwargs["fresh"], overrides=overrides(values),
                       log=functools.partial(say, console),
                       on_config=lambda cfg, method_cfg: (print_config("train", cfg), print_config(method, method_cfg)))
        if not result.main:
            return
        say(console, ("train", "green"), f": {result.epochs} epochs, best epoch {result.best_epoch} "
            f"(validation {result.best_value:.2f}), {result.samples_per_second:.0f} samples/s; "
            f"evaluate with: ccr evaluate {result.run_dir}")

    return make_command(params, handle, with_examples(DOC, EXAMPLES))
