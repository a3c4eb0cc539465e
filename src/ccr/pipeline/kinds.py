"""Recipe steps that are not corpus stages: train and evaluate runs, and look at what a run made
(export, report, info, noise-eval) or hold it to a threshold (check).

Corpus stages come from the stage table; these are the rest of a whole experiment, so a recipe
(the demo's among them) runs from the source files to the numbers with one ``ccr pipeline run``.
Each kind says its options (a dataclass, checked like a stage's), what its corpus must hold,
what exists once it has finished (so a rerun skips it) and how it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ccr.config import option
from ccr.models import mt_languages
from ccr.printing import say

if TYPE_CHECKING:
    from ccr.pipeline.plan import Recipe, Step



@dataclass
class Context:
    """What a running step reports to and knows about its past."""

    log: Callable[[str], None]  # progress lines
    out: Any  # the console for tables and the paths a user opens
    changed: bool = False  # the step finished before with other options or inputs


# The options of the kinds that are also commands (evaluate, export, report, info, noise eval): their
# help and defaults are written once, here; ccr.commands.kinds makes the commands' options from them.
# ``cli=False``: recipe-only (a step's ``out`` is under the work directory; its command's --out is a path).
OUT_HELP = "directory under the work directory (default: the step id)"


@dataclass
class EvaluateOptions:
    run: str = option("", "id of the train step whose run to score", cli=False)
    split: str = option("test", "split to score: test, val or a named test_*/val_* split such as test_2017_flickr")
    lang: list[str] = option(help="query language(s), comma-separated (default: the run's)", factory=list,
                             known=mt_languages)
    translate_test_weight: float | None = option(
        None, "fuse with the queries' English MT at this weight in [0, 1], for any method (NRCCR's image test: "
              "0.5) (default: native queries only)")
    sumr: Literal["both", "t2v"] = option("both", "directions SumR adds: both (t2v + v2t) or t2v (RIVRL's tables)")
    checkpoint: str = option("best", "best (validation) or last")
    queries: str | None = option(None, "grounding runs: human or mt queries of a non-English language (default: "
                                       "human if any, else mt)")


@dataclass
class ExportOptions:
    format: Literal["parquet", "jsonl", "hf", "nrccr"] = option(
        "parquet", "output format (hf: a Hub dataset; nrccr: NRCCR caption files with features)", short="-f")
    out: str = option("", OUT_HELP, cli=False)
    collection: str | None = option(None, "nrccr: collection name in file names")
    features: list[str] = option(help="hf, nrccr: feature sets to export (hf: config features-NAME; nrccr: "
                                      "BigFile/npy)", factory=list)
    lang: str | None = option(None, "only these languages (comma-separated)")
    split: str | None = option(None, "only these splits (comma-separated)")


@dataclass
class ReportOptions:
    out: str = option("", OUT_HELP, cli=False)
    lang: str | None = option(None, "only MT captions in these languages (comma-separated)")
    split: str | None = option(None, "only these splits (comma-separated)")
    limit: int | None = option(None, "at most this many rows in the pairs browser")


@dataclass
class InfoOptions:
    failures: bool = option(False, "outstanding failures by stage and reason, with a few example ids (and file:line)")


@dataclass
class NoiseEvalOptions:
    out: str = option("", OUT_HELP, cli=False)
    lang: list[str] = option(help="only these MT languages, comma-separated", factory=list, known=mt_languages)
    mt_model: list[str] = option(help="model key of the MT rows to read, where a language has several (repeatable)",
                                 factory=list)


@dataclass
class CheckOptions:
    file: str = ""  # a JSON file the run wrote, under the work directory (runs/ID/eval/test.de.json)
    figure: str = ""  # dotted path to a number in it (metrics.sumr, languages.de.scores.xl_sim.auroc)
    min: float | None = None  # the run fails if the figure is below this
    max: float | None = None  # ... or above this


@dataclass(frozen=True)
class Kind:
    options: type | None  # None: train, whose options are TrainConfig's and its method's
    run: Callable[[Recipe, Step, dict[str, Any], Context], None]
    output: Callable[[Recipe, Step, dict[str, Any]], Path]  # exists once the step has finished
    needs: frozenset[str] = frozenset()  # data keys its corpus must hold
    required: tuple[str, ...] = ()
    keyed_by: Literal["corpus", "run", "before"] = "corpus"  # what its step key chains: see orchestrate.step_keys


def out_dir(recipe: Recipe, step: Step, options: dict[str, Any]) -> Path:
    """Where a step writes: ``out`` under the work directory, else a directory named after the step."""
    return recipe.work_dir / (options.get("out") or step.id)


def _train(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.train.run.loop import train

    method = str(options.pop("method", "baseline"))
    if recipe.models:
        options["aliases"] = recipe.models
    if ctx.changed:
        ctx.log(f"{step.id}: its options or inputs changed since it last finished; training again from scratch")
    result = train(recipe.corpus_dir(step.corpus), recipe.run_dir(step.id), method=method, overrides=options,
                   fresh=ctx.changed, log=ctx.log)
    ctx.log(f"{step.id}: {method}, {result.epochs} epochs, best epoch {result.best_epoch}; run {result.run_dir}")


def _evaluate(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.train.eval.evaluate import evaluate_run
    from ccr.train.eval.metrics import format_table

    run_dir = recipe.run_dir(options["run"])
    results = evaluate_run(run_dir, split=options.get("split", "test"), langs=options.get("lang") or None,
                           translate_test_weight=options.get("translate_test_weight"),
                           sumr=options.get("sumr", "both"),
                           checkpoint=options.get("checkpoint", "best"), queries=options.get("queries"), log=ctx.log)
    say(ctx.out, format_table(results).rstrip())
    ctx.log(f"{step.id}: {run_dir / 'eval'}")


def _export(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.formats.export import export

    dest = out_dir(recipe, step, options)
    written = export(recipe.corpus_dir(step.corpus), dest, fmt=options.get("format", "parquet"),
                     collection=options.get("collection"), features=options.get("features") or [],
                     langs=options.get("lang"), splits=options.get("split"))
    ctx.log(f"{step.id}: {len(written)} files in {dest}")


def _report(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.report import build_report

    summary = build_report(recipe.corpus_dir(step.corpus), out_dir(recipe, step, options), langs=options.get("lang"),
                           splits=options.get("split"), limit=options.get("limit"))
    ctx.log(f"{step.id}: {summary.rows} rows, {summary.failures} failures; open it in a browser:")
    say(ctx.out, str(summary.index))


def _info(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.corpus.info import show

    show(recipe.corpus_dir(step.corpus), ctx.out, failures=bool(options.get("failures")))


def _noise_eval(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.filter.noise_eval import evaluate

    result = evaluate(recipe.corpus_dir(step.corpus), langs=options.get("lang") or (),
                      mt_model=options.get("mt_model") or (), out=out_dir(recipe, step, options))
    say(ctx.out, result.table)
    ctx.log(f"{step.id}: {result.json_path}, {result.plot_path}")


def _check(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    from ccr.pipeline.check import check

    value = check(_figure_file(recipe, step, options), options["figure"], options.get("min"), options.get("max"))
    bounds = " and ".join(f"{word} {options[key]:g}" for key, word in (("min", "at least"), ("max", "at most"))
                          if options.get(key) is not None)
    ctx.log(f"{step.id}: {options['figure']} = {value:g}, {bounds}")


def _figure_file(recipe: Recipe, step: Step, options: dict[str, Any]) -> Path:
    return recipe.work_dir / options["file"]


def _corpus_manifest(recipe: Recipe, step: Step, options: dict[str, Any]) -> Path:
    from ccr.corpus.corpus import MANIFEST

    return recipe.corpus_dir(step.corpus) / MANIFEST


KINDS: dict[str, Kind] = {
    "train": Kind(None, _train, lambda recipe, step, options: recipe.run_dir(step.id) / "run.json"),
    "evaluate": Kind(EvaluateOptions, _evaluate, lambda recipe, step, options: recipe.run_dir(options["run"]) / "eval",
                     required=("run",), keyed_by="run"),
    "export": Kind(ExportOptions, _export, out_dir, frozenset({"captions"})),
    "report": Kind(ReportOptions, _report, lambda r, s, o: out_dir(r, s, o) / "index.html", frozenset({"captions"})),
    "info": Kind(InfoOptions, _info, _corpus_manifest, frozenset({"captions"})),
    "noise-eval": Kind(NoiseEvalOptions, _noise_eval, lambda r, s, o: out_dir(r, s, o) / "noise_eval.json",
                       frozenset({"noise", "scores"})),
    "check": Kind(CheckOptions, _check, _figure_file, required=("file", "figure"), keyed_by="before"),
}
