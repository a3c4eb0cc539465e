"""What a few stage commands print after the run besides its summary and ``Stage.summary``, and the
hint for an old argument order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccr.commands.common import console, out
from ccr.commands.spec import Call
from ccr.printing import say


def noise_hints(call: Call, summary: Any) -> None:
    from ccr.filter.noise import noisy_models

    noisy = call.extras["out"] or call.corpus
    for lang, key in noisy_models(noisy).items():
        say(console, f"score the noisy {lang} rows: ccr score {noisy} --lang {lang} --mt-model {key}")


def score_plot(call: Call, summary: Any) -> None:
    from ccr.filter.score import summarize

    plot: Path | None = call.extras["plot"]
    if plot:
        summarize(call.corpus, list(call.cfg.lang), list(call.cfg.mt_model), plot=plot)
        say(console, ("plot", "green"), f": {plot}")


def kept_summary(call: Call, summary: Any) -> None:
    from ccr.filter.select import kept_summary as kept

    for row in kept(call.corpus, list(call.cfg.lang), list(call.cfg.mt_model)):
        say(out, f"{row['lang']}: kept {row['kept']} of {row['rows']} MT rows, mean weight {row['mean_weight']:.3f}")


def corpus_first(command: str) -> Any:
    """The hint for ``ccr COMMAND FORMAT SRC CORPUS``, the order before the corpus came first."""

    def hint(corpus: Path, values: dict[str, Any], extra: list[str]) -> str:
        return (f"the corpus comes first now: ccr {command} CORPUS SRC --format FORMAT, here "
                f"ccr {command} {' '.join(extra)} {values['src']} --format {corpus}")

    return hint
