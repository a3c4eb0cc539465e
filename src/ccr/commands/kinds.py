"""The commands that are also recipe step kinds: ``ccr evaluate``, ``export``, ``report``, ``info``, ``noise eval``.

Their shared options (help, default, choices) are the kinds' option dataclasses in
``ccr.pipeline.kinds``, made into options by ``ccr.commands.fields`` as a stage's config is, so a
recipe step and the command never disagree. What only the command has (a run directory or
``--out`` path, ``--compare``, ``--device``) is a parameter here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ccr.commands.build import DeviceOpt, corpus_param, make_command, param
from ccr.commands.common import console, out, with_examples
from ccr.commands.fields import collect, field_options, overrides
from ccr.config import resolve
from ccr.errors import CcrError
from ccr.pipeline import kinds
from ccr.printing import say

Handler = Callable[[dict[str, Any], Any], None]


def _command(options: type, params: Sequence[inspect.Parameter], after: Sequence[inspect.Parameter],
             handler: Handler, doc: str, examples: Sequence[str]) -> Callable[..., None]:
    """``params``, the options of ``options``, then ``after``; ``handler`` gets the other arguments
    and the options resolved (defaults for what was not given)."""
    fields = field_options(options)

    def handle(kwargs: dict[str, Any]) -> None:
        given = overrides(collect([s for s, _ in fields], kwargs))
        handler(kwargs, resolve(options, given))

    return make_command([*params, *(p for _, p in fields), *after], handle, with_examples(doc, examples))


def _out(help_: str, default: Any = None) -> inspect.Parameter:
    return param("out_dir", Annotated[Path | None, typer.Option("--out", "-o", help=help_)], default)


def export_command() -> Callable[..., None]:
    def handle(kwargs: dict[str, Any], opts: kinds.ExportOptions) -> None:
        from ccr.formats.export import export

        corpus, out_dir, extra = kwargs["corpus"], kwargs["out_dir"], kwargs["ctx"].args
        if extra:
            raise CcrError(f"the output directory is an option now: ccr export CORPUS --out DIR, here "
                           f"ccr export {corpus} --out {extra[0]}")
        if out_dir is None:
            raise CcrError("ccr export needs --out DIR: where the files go")
        written = export(corpus, out_dir, fmt=opts.format, collection=opts.collection, features=opts.features,
                         langs=opts.lang, splits=opts.split)
        for path in written:
            say(out, str(path))
        say(console, ("export", "green"), f": {len(written)} files in {out_dir}")

    return _command(kinds.ExportOptions, [param("ctx", typer.Context), corpus_param(),
                                          _out("output directory (required)")], [], handle,
                    "Write a corpus as Parquet/JSONL, as a Hub dataset (--format hf), or as NRCCR caption files "
                    "with features.",
                    ["ccr export ccr-demo/corpus --out ccr-demo/hub --format hf --features clip",
                     "ccr export ccr-demo/corpus --out ccr-demo/nrccr --format nrccr --collection toy --features clip",
                     "ccr export ccr-demo/corpus --out ccr-demo/german --format jsonl --lang de --split test"])


def info_command() -> Callable[..., None]:
    def handle(kwargs: dict[str, Any], opts: kinds.InfoOptions) -> None:
        from ccr.corpus.info import show

        show(kwargs["corpus"], out, failures=opts.failures)

    return _command(kinds.InfoOptions, [corpus_param()], [], handle,
                    "Rows per split x language x origin, stage history, failures.",
                    ["ccr info ccr-demo/corpus", "ccr info ccr-demo/corpus --failures"])


def report_command() -> Callable[..., None]:
    def handle(kwargs: dict[str, Any], opts: kinds.ReportOptions) -> None:
        from ccr.report import build_report

        summary = build_report(kwargs["corpus"], kwargs["out_dir"], langs=opts.lang, splits=opts.split,
                               limit=opts.limit, media_root=kwargs["media_root"],
                               log=lambda line: say(console, (line, "dim")))
        say(console, ("report", "green"), f": {summary.rows} rows, {summary.media} thumbnails, "
            f"{summary.media_problems} media shown as placeholders, {summary.failures} failures, "
            f"{summary.seconds:.1f}s; open it in a browser:")
        say(out, str(summary.index))

    out_dir = param("out_dir", Annotated[Path, typer.Option(
        "--out", "-o", help="report directory (created; an older report is rebuilt)")])
    media_root = param("media_root", Annotated[Path | None, typer.Option(
        help="where media paths are relative to (default: the manifest's)")], None)
    return _command(kinds.ReportOptions, [corpus_param(), out_dir], [media_root], handle,
                    "An offline HTML report: overview, pairs browser, worst and best pairs, score histograms, "
                    "failures.",
                    ["ccr report ccr-demo/noisy --out ccr-demo/noisy-report",
                     "ccr report ccr-demo/corpus --out ccr-demo/de --lang de"])


def noise_eval_command() -> Callable[..., None]:
    def handle(kwargs: dict[str, Any], opts: kinds.NoiseEvalOptions) -> None:
        from ccr.filter.noise_eval import evaluate

        result = evaluate(kwargs["corpus"], langs=opts.lang, mt_model=opts.mt_model, out=kwargs["out_dir"])
        say(out, result.table)
        say(console, ("noise eval", "green"), f": {result.table_path}, {result.json_path}, {result.plot_path}")

    return _command(kinds.NoiseEvalOptions,
                    [corpus_param("a noisy corpus made by ccr noise inject, scored"),
                     _out("where the table, JSON and plot go (default: CORPUS-noise-eval next to it)")], [], handle,
                    "AUROC and precision at the kept fraction of every score against the planted noise, with "
                    "histograms.",
                    ["ccr noise eval ccr-demo/noisy --out ccr-demo/noise-eval-2"])


EVALUATE_DOC = """R@1/5/10, MedR, MeanR, mAP and SumR per language; writes eval/SPLIT.LANG.json and a Markdown table.

Every method is scored under the same protocol (native queries) unless an option says otherwise;
each result records it, and --compare refuses rows scored differently. Grounding runs (rgtr) report
the standard QVHighlights metrics instead (Charades-STA/TACoS: also R1@0.3 and mIoU) and write their
predictions to eval/SPLIT.LANG.submission.jsonl; --submission FILE --gt FILE scores such a file alone."""


def evaluate_command() -> Callable[..., None]:
    before = [
        param("run_dirs", Annotated[list[Path] | None, typer.Argument(
            help="run directory written by ccr train (several with --compare; none with --submission)",
            metavar="[RUN_DIR]...")], None),
        param("compare", Annotated[bool, typer.Option(
            help="read the runs' eval/SPLIT.LANG.json: one Markdown table of them all and a bar chart")], False),
        param("allow_mixed", Annotated[bool, typer.Option(
            help="--compare: print rows scored under different protocols, with the protocol as a column")], False),
        param("plot", Annotated[Path, typer.Option(help="--compare: where the bar chart PNG goes")], Path("compare.png")),
    ]
    after = [
        param("old_translate_test", Annotated[float | None, typer.Option("--translate-test", hidden=True)], None),
        param("corpus", Annotated[Path | None, typer.Option(help="the corpus, if it moved since training")], None),
        param("gallery", Annotated[str | None, typer.Option(
            help="captioned: the items with captions in the language (papers' protocol); split: every item of the "
                 "split (default: the run's setting, captioned)")], None),
        param("mt_model", Annotated[str | None, typer.Option(
            help="model key of the queries' English MT (translate-test) or of grounding's MT queries, where "
                 "several")], None),
        param("submission", Annotated[Path | None, typer.Option(
            help="score this QVHighlights-format predictions jsonl against --gt, without a run")], None),
        param("gt", Annotated[Path | None, typer.Option(help="--submission: the ground-truth annotations jsonl")], None),
        param("out_file", Annotated[Path | None, typer.Option(
            "--out", help="--submission: where the metrics JSON goes (default: SUBMISSION_metrics.json beside it)")],
              None),
        param("device", DeviceOpt, None),
    ]
    return _command(kinds.EvaluateOptions, before, after, _evaluate, EVALUATE_DOC,
                    ["ccr evaluate ccr-demo/runs/baseline --lang de",
                     "ccr evaluate ccr-demo/runs/dcot --lang de --split val --sumr t2v",
                     "ccr evaluate ccr-demo/runs/baseline ccr-demo/runs/dcot --compare --plot ccr-demo/compare.png"])


def _evaluate(kwargs: dict[str, Any], opts: kinds.EvaluateOptions) -> None:
    """Score a predictions file, compare runs, or evaluate one run: which, the arguments say."""
    from ccr.train.eval.metrics import format_table
    from ccr.train.legacy import renamed_hint

    if kwargs["old_translate_test"] is not None:
        raise CcrError(renamed_hint("translate_test", flag=True))
    run_dirs, submission, gt = kwargs["run_dirs"] or [], kwargs["submission"], kwargs["gt"]
    langs = opts.lang or None
    if submission is not None or gt is not None:
        if submission is None or gt is None or run_dirs:
            raise CcrError("--submission FILE --gt FILE scores a predictions file: give both, and no run directory")
        from ccr.train.eval.submission import evaluate_files

        metrics, path = evaluate_files(submission, gt, out=kwargs["out_file"])
        say(out, format_table({submission.name: metrics["brief"]}, first_column="submission"))
        say(console, ("evaluate", "green"), f": {path}")
        return
    if kwargs["compare"]:
        from ccr.train.eval.compare import compare_runs, plot_comparison

        rows, text = compare_runs(run_dirs, split=opts.split, langs=langs, allow_mixed=kwargs["allow_mixed"])
        say(out, text)
        say(console, ("compare", "green"), f": {len(rows)} rows; chart {plot_comparison(rows, kwargs['plot'])}")
        return
    if not run_dirs:
        raise CcrError("give a run directory to score (or --submission FILE --gt FILE for a predictions file)")
    if len(run_dirs) != 1:
        raise CcrError(f"ccr evaluate scores one run ({len(run_dirs)} given); to put several side by side "
                       f"add --compare")
    run_dir = run_dirs[0]
    from ccr.train.eval.evaluate import evaluate_run

    results = evaluate_run(run_dir, split=opts.split, langs=langs, translate_test_weight=opts.translate_test_weight,
                           checkpoint=opts.checkpoint, corpus=kwargs["corpus"], device=kwargs["device"] or "auto",
                           queries=opts.queries, gallery=kwargs["gallery"], mt_model=kwargs["mt_model"],
                           sumr=opts.sumr, log=functools.partial(say, console))
    say(out, format_table(results))
    say(console, ("evaluate", "green"), f": {run_dir / 'eval'}/{opts.split}.{{{','.join(results)}}}.json")
