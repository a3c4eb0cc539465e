"""The ``ccr`` command line: parsing only; every command calls a library function.

Heavy libraries (torch, transformers, datasets, polars, ray) are imported inside the functions the
commands call, so ``ccr --help`` answers at once.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from ccr.commands.common import console, examples, friendly, out
from ccr.commands.fields import known_text
from ccr.commands.order import PipelineOrder
from ccr.commands.stages import add_stage_commands
from ccr.commands.train import train_command
from ccr.corpus import compact as compaction
from ccr.errors import CcrError
from ccr.models import mt_languages
from ccr.printing import print_table, say
from ccr.stages.table import names as stage_names

app = typer.Typer(
    name="ccr",
    help="Cross-lingual cross-modal retrieval: build multilingual pseudo-parallel corpora and train retrieval models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=PipelineOrder,
)


def _version(asked: bool) -> None:
    if asked:
        from ccr import __version__

        say(out, f"ccr {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version, help="print ccr's version and exit")] = False) -> None:
    pass


@app.command(context_settings={"allow_extra_args": True})
@friendly
@examples("ccr export ccr-demo/corpus --out ccr-demo/hub --format hf --features clip",
          "ccr export ccr-demo/corpus --out ccr-demo/nrccr --format nrccr --collection toy --features clip",
          "ccr export ccr-demo/corpus --out ccr-demo/german --format jsonl --lang de --split test")
def export(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="output directory (required)")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="parquet, jsonl, hf (a Hub dataset) or nrccr")] = "parquet",
    collection: Annotated[str | None, typer.Option(help="nrccr: collection name in file names")] = None,
    features: Annotated[list[str] | None, typer.Option(
        help="hf, nrccr: feature sets to export (hf: config features-NAME; nrccr: BigFile/npy)")] = None,
    lang: Annotated[str | None, typer.Option(help="only these languages (comma-separated)")] = None,
    split: Annotated[str | None, typer.Option(help="only these splits (comma-separated)")] = None,
) -> None:
    """Write a corpus as Parquet/JSONL, as a Hub dataset (--format hf), or as NRCCR caption files with features."""
    from ccr.formats.export import export as run_export

    if ctx.args:
        raise CcrError(f"the output directory is an option now: ccr export CORPUS --out DIR, here "
                       f"ccr export {corpus} --out {ctx.args[0]}")
    if out_dir is None:
        raise CcrError("ccr export needs --out DIR: where the files go")
    written = run_export(corpus, out_dir, fmt=format, collection=collection, features=features or [],
                         langs=lang, splits=split)
    for path in written:
        say(out, str(path))
    say(console, ("export", "green"), f": {len(written)} files in {out_dir}")


@app.command()
@friendly
@examples("ccr push ccr-demo/export/hf --repo YOUR_NAME/ccr-toy --private")
def push(
    folder: Annotated[Path, typer.Argument(help="a folder written by ccr export --format hf")],
    repo: Annotated[str, typer.Option(help="the dataset repo on the Hub, OWNER/NAME (made if missing)")],
    private: Annotated[bool, typer.Option(help="make the repo private")] = False,
    token: Annotated[str | None, typer.Option(help="Hub token with write access (default: HF_TOKEN or hf auth login)")] = None,
) -> None:
    """Upload a Hub export (ccr export --format hf) as a dataset repo; run it again to resume an interrupted upload.

    It needs the Hub and a token with write access (HF_TOKEN, hf auth login or --token).
    """
    from ccr.formats.hub import push as run_push

    url = run_push(folder, repo, private=private, token=token)
    say(console, ("push", "green"), f": {folder} -> {url}")


@app.command()
@friendly
@examples("ccr info ccr-demo/corpus", "ccr info ccr-demo/corpus --failures")
def info(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    failures: Annotated[bool, typer.Option(
        help="outstanding failures by stage and reason, with a few example ids (and file:line)")] = False,
) -> None:
    """Rows per split x language x origin, stage history, failures."""
    from ccr.corpus.info import show

    show(corpus, out, failures=failures)


@app.command()
@friendly
@examples("ccr compact ccr-demo/corpus", "ccr compact ccr-demo/corpus --stage translate --target-rows 100000")
def compact(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    stage: Annotated[str | None, typer.Option(help="compact only this stage's shards (default: every stage)")] = None,
    target_rows: Annotated[int, typer.Option(help="rows per merged shard")] = compaction.TARGET_ROWS,
) -> None:
    """Merge the small shards stages committed into shards of about --target-rows rows."""
    from ccr.corpus.corpus import Corpus

    opened = Corpus.open(corpus)
    files = len({f for c in opened.commits() for f in c.files.values()})
    for done in compaction.compact(opened, stage, target_rows=target_rows):
        if done.busy and stage is not None:
            raise CcrError(f"ccr {done.stage} is running on {corpus} (or being compacted); compact once it has finished")
        what = "running, skipped" if done.busy else f"{done.merged} commits merged into {done.written}"
        say(console, ("compact", "green"), f" {done.stage}: {what}")
    after = len({f for c in Corpus.open(corpus).commits() for f in c.files.values()})
    say(console, ("compact", "green"), f": {files} shard files -> {after}")


@app.command()
@examples("ccr models")
def models() -> None:
    """The model table: default ids per role and language pair, and their tiny stand-ins."""
    from rich.table import Table

    from ccr.models import describe

    table = Table("role", "default id", "revision", "prefix", "tiny stand-in", "toy model", "note")
    for row in describe():
        table.add_row(row["role"], row["id"], row["revision"], row["prefix"], row["tiny"], row["toy"], row["note"])
    print_table(out, table)


@app.command()
@friendly
@examples("ccr demo ccr-demo")
def demo(
    dest: Annotated[Path, typer.Argument(help="where to write the demo (a fresh directory)")] = Path("ccr-demo"),
    models: Annotated[str, typer.Option(help="toy: small models learned on the toy domain, shipped with ccr (its "
                                             "numbers mean something); random: tiny random stand-ins, the fastest "
                                             "smoke run, numbers meaningless; real: the default hub models (need "
                                             "the hub or a cache)")] = "toy",
    old_real_models: Annotated[bool, typer.Option("--real-models", hidden=True)] = False,
) -> None:
    """Run the demo recipe (every stage, training, noise and checks) on the bundled toy corpus."""
    from ccr.demo import run_demo

    if old_real_models:
        raise CcrError("--real-models is now --models real")
    run_demo(dest, models=models, console=console, out=out)


DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps (default: auto)")]
MediaRootOpt = Annotated[Path | None, typer.Option(help="where media paths are relative to (default: the manifest's)")]


app.command("train")(train_command())


@app.command()
@friendly
@examples("ccr evaluate ccr-demo/runs/baseline --lang de",
          "ccr evaluate ccr-demo/runs/dcot --lang de --split val --sumr t2v",
          "ccr evaluate ccr-demo/runs/baseline ccr-demo/runs/dcot --compare --plot ccr-demo/compare.png")
def evaluate(
    run_dirs: Annotated[list[Path] | None, typer.Argument(
        help="run directory written by ccr train (several with --compare; none with --submission)",
        metavar="[RUN_DIR]...")] = None,
    compare: Annotated[bool, typer.Option(
        help="read the runs' eval/SPLIT.LANG.json: one Markdown table of them all and a bar chart")] = False,
    allow_mixed: Annotated[bool, typer.Option(
        help="--compare: print rows scored under different protocols, with the protocol as a column")] = False,
    plot: Annotated[Path, typer.Option(help="--compare: where the bar chart PNG goes")] = Path("compare.png"),
    split: Annotated[str, typer.Option(
        help="split to score: test, val or a named test_*/val_* split such as test_2017_flickr")] = "test",
    lang: Annotated[str | None, typer.Option(
        help="query language(s), comma-separated (default: the run's)" + known_text(mt_languages))] = None,
    translate_test_weight: Annotated[float | None, typer.Option(
        help="fuse with the queries' English MT at this weight in [0, 1], for any method (NRCCR's image test: "
             "0.5) (default: native queries only)")] = None,
    old_translate_test: Annotated[float | None, typer.Option("--translate-test", hidden=True)] = None,
    sumr: Annotated[str, typer.Option(help="directions SumR adds: both (t2v + v2t) or t2v (RIVRL's tables)")] = "both",
    checkpoint: Annotated[str, typer.Option(help="best (validation) or last")] = "best",
    corpus: Annotated[Path | None, typer.Option(help="the corpus, if it moved since training")] = None,
    queries: Annotated[str | None, typer.Option(
        help="grounding runs: human or mt queries of a non-English language (default: human if any, else mt)")] = None,
    gallery: Annotated[str | None, typer.Option(
        help="captioned: the items with captions in the language (papers' protocol); split: every item of the "
             "split (default: the run's setting, captioned)")] = None,
    mt_model: Annotated[str | None, typer.Option(
        help="model key of the queries' English MT (translate-test) or of grounding's MT queries, where several")] = None,
    submission: Annotated[Path | None, typer.Option(
        help="score this QVHighlights-format predictions jsonl against --gt, without a run")] = None,
    gt: Annotated[Path | None, typer.Option(help="--submission: the ground-truth annotations jsonl")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="--submission: where the metrics JSON goes (default: SUBMISSION_metrics.json beside it)")] = None,
    device: DeviceOpt = None,
) -> None:
    """R@1/5/10, MedR, MeanR, mAP and SumR per language; writes eval/SPLIT.LANG.json and a Markdown table.

    Every method is scored under the same protocol (native queries) unless an option says otherwise;
    each result records it, and --compare refuses rows scored differently. Grounding runs (rgtr) report
    the standard QVHighlights metrics instead (Charades-STA/TACoS: also R1@0.3 and mIoU) and write their
    predictions to eval/SPLIT.LANG.submission.jsonl; --submission FILE --gt FILE scores such a file alone.
    """
    from ccr.train.legacy import renamed_hint

    if old_translate_test is not None:
        raise CcrError(renamed_hint("translate_test", flag=True))
    run_dirs = run_dirs or []
    langs = [x.strip() for x in lang.split(",") if x.strip()] if lang else None
    if submission is not None or gt is not None:
        if submission is None or gt is None or run_dirs:
            raise CcrError("--submission FILE --gt FILE scores a predictions file: give both, and no run directory")
        from ccr.train.eval.metrics import format_table
        from ccr.train.eval.submission import evaluate_files

        metrics, path = evaluate_files(submission, gt, out=out_file)
        say(out, format_table({submission.name: metrics["brief"]}, first_column="submission"))
        say(console, ("evaluate", "green"), f": {path}")
        return
    if compare:
        from ccr.train.eval.compare import compare_runs, plot_comparison

        rows, text = compare_runs(run_dirs, split=split, langs=langs, allow_mixed=allow_mixed)
        say(out, text)
        say(console, ("compare", "green"), f": {len(rows)} rows; chart {plot_comparison(rows, plot)}")
        return
    if not run_dirs:
        raise CcrError("give a run directory to score (or --submission FILE --gt FILE for a predictions file)")
    if len(run_dirs) != 1:
        raise CcrError(f"ccr evaluate scores one run ({len(run_dirs)} given); to put several side by side "
                       f"add --compare")
    run_dir = run_dirs[0]
    from ccr.train.eval.evaluate import evaluate_run
    from ccr.train.eval.metrics import format_table

    results = evaluate_run(run_dir, split=split, langs=langs, translate_test_weight=translate_test_weight,
                           checkpoint=checkpoint, corpus=corpus, device=device or "auto", queries=queries,
                           gallery=gallery, mt_model=mt_model, sumr=sumr,  # type: ignore[arg-type]
                           log=functools.partial(say, console))
    say(out, format_table(results))
    say(console, ("evaluate", "green"), f": {run_dir / 'eval'}/{split}.{{{','.join(results)}}}.json")


@app.command()
@friendly
@examples('ccr search ccr-demo/runs/baseline "ein roter Stern auf blauem Hintergrund" --top 5',
          'ccr search ccr-demo/runs/baseline "a red star" --lang en --gallery split',
          "ccr search ccr-demo/runs/baseline --image ccr-demo/toy/images/m0233.png",
          "ccr search ccr-demo/runs/dcot --media-id m0233 --json")
def search(
    run_dir: Annotated[Path, typer.Argument(help="run directory written by ccr train")],
    query: Annotated[str | None, typer.Argument(help="text to find media for, in --lang")] = None,
    image: Annotated[Path | None, typer.Option(help="find media like this image file instead")] = None,
    media_id: Annotated[str | None, typer.Option(help="find captions (in --lang) for this media item instead")] = None,
    corpus: Annotated[Path | None, typer.Option(help="the corpus, if it moved since training")] = None,
    split: Annotated[str, typer.Option(help="split to search: test, val, train or a named split")] = "test",
    gallery: Annotated[str | None, typer.Option(
        help="captioned: the items with captions in --lang; split: every item of the split (default: the run's)")] = None,
    lang: Annotated[str | None, typer.Option(help="query and caption language (default: the run's first)")] = None,
    top: Annotated[int, typer.Option(help="how many results")] = 10,
    json_: Annotated[bool, typer.Option("--json", help="one JSON document on stdout, for scripts")] = False,
    checkpoint: Annotated[str, typer.Option(help="best (validation) or last")] = "best",
    device: DeviceOpt = None,
) -> None:
    """The top results of a split for a text, an image file or a media item, with scores, captions and files.

    The first search of a gallery embeds it once, into RUN/search-cache/; later searches read it from there.
    """
    import json

    from ccr.train.api import load

    model = load(run_dir, checkpoint=checkpoint, device=device or "auto", corpus=corpus,
                 log=functools.partial(say, console))
    results = model.search(query, image=image, media_id=media_id, lang=lang, split=split, gallery=gallery, top=top,
                           log=lambda line: say(console, (line, "dim")))
    if json_:
        say(out, json.dumps(results.to_dict(), ensure_ascii=False))
        return
    from rich.table import Table

    table = Table("rank", "score", "caption id" if results.kind == "media" else "media id", "caption(s)", "file")
    for hit in results.hits:
        table.add_row(str(hit.rank), f"{hit.score:.4f}", hit.caption_id or hit.media_id, " | ".join(hit.captions),
                      hit.path or "")
    print_table(out, table)
    say(console, ("search", "green"), f": {results.kind} query against {results.size} {results.split} "
        f"{'captions' if results.kind == 'media' else 'items'} ({results.gallery}, {results.lang}); gallery "
        f"embeddings {'from the cache' if results.cached else 'computed and cached'} in {run_dir / 'search-cache'}")


@app.command()
@friendly
@examples("ccr report ccr-demo/noisy --out ccr-demo/noisy-report", "ccr report ccr-demo/corpus --out ccr-demo/de --lang de")
def report(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="report directory (created; an older report is rebuilt)")],
    lang: Annotated[str | None, typer.Option(help="only MT captions in these languages (comma-separated)")] = None,
    split: Annotated[str | None, typer.Option(help="only these splits (comma-separated)")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many rows in the pairs browser")] = None,
    media_root: MediaRootOpt = None,
) -> None:
    """An offline HTML report: overview, pairs browser, worst and best pairs, score histograms, failures."""
    from ccr.report import build_report

    summary = build_report(corpus, out_dir, langs=lang, splits=split, limit=limit, media_root=media_root,
                           log=lambda line: say(console, (line, "dim")))
    say(console, ("report", "green"), f": {summary.rows} rows, {summary.media} thumbnails, "
        f"{summary.media_problems} media shown as placeholders, {summary.failures} failures, "
        f"{summary.seconds:.1f}s; open it in a browser:")
    say(out, str(summary.index))


FilterMtModelOpt = Annotated[list[str] | None, typer.Option(
    help="model key of the MT rows to read, where a language has several (repeatable)")]


pipeline_app = typer.Typer(help="Run a recipe (configs/*.toml): stages from ingest to evaluate, resumable.",
                           no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
@friendly
@examples("ccr pipeline run ccr-demo/recipe.toml --data-root ccr-demo/toy --work-dir ccr-demo-2 --models toy --dry-run",
          "ccr pipeline run ccr-demo/recipe.toml --data-root ccr-demo/toy --work-dir ccr-demo-2 --models toy "
          "--until translate")
def pipeline_run(
    recipe: Annotated[Path, typer.Argument(help="recipe TOML, e.g. configs/multi30k.toml")],
    data_root: Annotated[Path | None, typer.Option(help="where the source files are (pipeline.data_root)")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="corpus and runs go here (pipeline.work_dir)")] = None,
    models: Annotated[str | None, typer.Option(
        help="random: tiny random stand-ins and one short epoch, to check files and layout in minutes (numbers "
             "meaningless); toy: the small models ccr ships, learned on the toy domain; real: the recipe's "
             "models (pipeline.models)")] = None,
    tiny: Annotated[bool, typer.Option(help="the same as --models random")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan and what is already done; run nothing")] = False,
    from_: Annotated[str | None, typer.Option("--from", help="start at this step id (or a stage's first step)")] = None,
    until: Annotated[str | None, typer.Option(help="stop after this step id (or a stage's last step)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override: pipeline.KEY=V, STEP_ID.KEY=V, STAGE.KEY=V or models.NAME=PATH (repeatable)")] = None,
) -> None:
    """Check a whole recipe, then run its steps in order; rerunning skips what is done and resumes the rest."""
    from ccr.pipeline.orchestrate import describe, run_pipeline
    from ccr.pipeline.recipe import load_recipe

    given = {"data_root": data_root, "work_dir": work_dir, "models": models, "tiny": tiny or None}
    plan = load_recipe(recipe, sets=set_, start=from_, until=until,
                       pipeline={k: str(v) if isinstance(v, Path) else v for k, v in given.items() if v is not None})
    say(out, describe(plan))
    if dry_run:
        return
    ended = run_pipeline(plan, log=functools.partial(say, console), out=out)
    ran = sum(s.state == "ran" for s in ended)
    say(console, ("pipeline", "green"), f": {ran} steps ran, {len(ended) - ran} were done already; "
        f"compare the runs with: ccr evaluate --compare {plan.work_dir / 'runs'}/*")


noise_app = typer.Typer(help="Plant known noise in MT captions (in a copy) and measure how well scores find it.",
                        no_args_is_help=True)
app.add_typer(noise_app, name="noise")


@noise_app.command("eval")
@friendly
@examples("ccr noise eval ccr-demo/noisy --out ccr-demo/noise-eval-2")
def noise_eval(
    corpus: Annotated[Path, typer.Argument(help="a noisy corpus made by ccr noise inject, scored")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="where the table, JSON and plot go "
                                                                    "(default: CORPUS-noise-eval next to it)")] = None,
    lang: Annotated[str | None, typer.Option(
        help="only these MT languages, comma-separated" + known_text(mt_languages))] = None,
    mt_model: FilterMtModelOpt = None,
) -> None:
    """AUROC and precision at the kept fraction of every score against the planted noise, with histograms."""
    from ccr.filter.noise_eval import evaluate

    langs = [x.strip() for x in lang.split(",") if x.strip()] if lang else []
    result = evaluate(corpus, langs=langs, mt_model=mt_model or [], out=out_dir)
    say(out, result.table)
    say(console, ("noise eval", "green"), f": {result.table_path}, {result.json_path}, {result.plot_path}")


add_stage_commands(app, {"noise": noise_app}, stage_names())


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
