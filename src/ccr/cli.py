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

from ccr.commands.build import DeviceOpt
from ccr.commands.common import console, examples, friendly, out
from ccr.commands.kinds import (
    evaluate_command,
    export_command,
    info_command,
    noise_eval_command,
    report_command,
)
from ccr.commands.order import PipelineOrder
from ccr.commands.stages import add_stage_commands
from ccr.commands.train import train_command
from ccr.corpus import compact as compaction
from ccr.errors import CcrError
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


app.command("train")(train_command())
app.command("evaluate")(evaluate_command())
app.command("export", context_settings={"allow_extra_args": True})(export_command())
app.command("report")(report_command())
app.command("info")(info_command())


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


noise_app.command("eval")(noise_eval_command())


add_stage_commands(app, {"noise": noise_app}, stage_names())


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
