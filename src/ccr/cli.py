"""The ``ccr`` command line: parsing only; every command calls a library function.

Heavy libraries (torch, transformers, datasets, polars, ray) are imported inside the functions the
commands call, so ``ccr --help`` answers at once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from ccr.errors import CcrError

app = typer.Typer(
    name="ccr",
    help="Cross-lingual cross-modal retrieval: build multilingual pseudo-parallel corpora and train retrieval models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """User mistakes become one red line and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CcrError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished shards are kept; run the same command again to resume")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file with option overrides")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override one option: key=value (repeatable)")]
BatchOpt = Annotated[int, typer.Option(help="rows per batch")]
ShardsOpt = Annotated[int, typer.Option(help="split the stage into N independent workers")]
IndexOpt = Annotated[int, typer.Option(help="which worker this is (0..N-1)")]
LimitOpt = Annotated[int | None, typer.Option(help="process at most this many owed rows")]
ForceOpt = Annotated[bool, typer.Option(help="redo the stage from scratch (same config)")]
RetryOpt = Annotated[bool, typer.Option(help="process rows that failed before again")]
EngineOpt = Annotated[str, typer.Option(help="local, or ray (Ray Data actor pool; RAY_ADDRESS joins a cluster)")]


def _options(batch_size: int, num_shards: int, shard_index: int, limit: int | None, force: bool,
             retry_failed: bool, engine: str = "local") -> Any:
    from ccr.pipeline.runner import RunOptions

    return RunOptions(batch_size=batch_size, num_shards=num_shards, shard_index=shard_index, limit=limit,
                      force=force, retry_failed=retry_failed, engine=engine)


def run_stage_command(name: str, corpus: Path, *, config: Path | None, sets: list[str] | None,
                      overrides: dict[str, Any], batch_size: int, num_shards: int, shard_index: int,
                      limit: int | None, force: bool, retry_failed: bool, engine: str) -> Any:
    """What every stage command does after parsing: resolve the config, run, print the summary."""
    from ccr.pipeline.stages import run

    summary = run(name, corpus, config=config, sets=sets, overrides=overrides,
                  options=_options(batch_size, num_shards, shard_index, limit, force, retry_failed, engine),
                  on_config=_print_config)
    _print_summary(summary)
    return summary


def _print_config(stage: str, cfg: Any) -> None:
    from ccr.config import to_dict

    items = ", ".join(f"{k}={v!r}" for k, v in to_dict(cfg).items() if v not in (None, {}, [], ""))
    console.print(f"[dim]{stage} config: {items}[/]", highlight=False, soft_wrap=True)


def _print_summary(summary: Any) -> None:
    outs = ", ".join(f"{n} {t}" for t, n in summary.rows_out.items()) or "nothing new"
    line = (f"[green]{summary.stage}[/]: {summary.rows_in} rows in, {outs}, "
            f"{summary.rows_failed} failed, {summary.seconds:.1f}s")
    if summary.skipped_chunks:
        line += f" ({summary.skipped_chunks} shards already done)"
    console.print(line, highlight=False)
    for reason, n in sorted(summary.failure_reasons.items(), key=lambda kv: -kv[1])[:5]:
        console.print(f"  [yellow]{n} x[/] {reason}", highlight=False)
    if summary.rows_failed:
        console.print("  see them with: ccr info CORPUS --failures", highlight=False)


@app.command()
@friendly
def ingest(
    format: Annotated[str, typer.Argument(help="coco, karpathy, multi30k, vatex, qvhighlights, charades, tacos, "
                                               "nrccr, jsonl, csv, parquet")],
    src: Annotated[Path, typer.Argument(help="source file or directory")],
    corpus: Annotated[Path, typer.Argument(help="corpus directory (created if missing)")],
    media_root: Annotated[Path | None, typer.Option(help="where media paths are relative to (default: next to SRC)")] = None,
    split: Annotated[str | None, typer.Option(help="split for formats that do not say")] = None,
    lang: Annotated[str | None, typer.Option(help="caption language where the format does not say")] = None,
    modality: Annotated[str | None, typer.Option(help="image or video, where the format does not say")] = None,
    column: Annotated[list[str] | None, typer.Option(help="generic formats: OURS=THEIRS column mapping")] = None,
    verify_media: Annotated[bool, typer.Option(help="open every media file; unreadable ones become failures")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    batch_size: BatchOpt = 1024,
    limit: LimitOpt = None,
    force: ForceOpt = False,
) -> None:
    """Read a dataset in one of the field's formats into a corpus directory."""
    from ccr.pipeline.ingest.stage import ingest as run_ingest

    columns = dict(c.split("=", 1) for c in (column or []) if "=" in c)
    summary = run_ingest(format, src, corpus, media_root=media_root, split=split, lang=lang, modality=modality,
                         columns=columns, verify_media=verify_media, config=config, sets=set_,
                         options=_options(batch_size, 1, 0, limit, force, False), on_config=_print_config)
    _print_summary(summary)


@app.command()
@friendly
def export(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    dest: Annotated[Path, typer.Argument(help="output directory")],
    format: Annotated[str, typer.Option("--format", "-f", help="parquet, jsonl or nrccr")] = "parquet",
    collection: Annotated[str | None, typer.Option(help="nrccr: collection name in file names")] = None,
    features: Annotated[list[str] | None, typer.Option(help="nrccr: feature sets to export (BigFile/npy)")] = None,
    lang: Annotated[str | None, typer.Option(help="only these languages (comma-separated)")] = None,
    split: Annotated[str | None, typer.Option(help="only these splits (comma-separated)")] = None,
) -> None:
    """Write a corpus as Parquet/JSONL, or as NRCCR caption files with BigFile/npy features."""
    from ccr.pipeline.export import export as run_export

    written = run_export(corpus, dest, fmt=format, collection=collection, features=features or [],
                         langs=lang, splits=split)
    for path in written:
        out.print(str(path), highlight=False)
    console.print(f"[green]export[/]: {len(written)} files in {dest}", highlight=False)


@app.command("import-features")
@friendly
def import_features(
    format: Annotated[str, typer.Argument(help="bigfile, npy or npz")],
    src: Annotated[Path, typer.Argument(help="BigFile directory, .npy file, or directory of <vid>.npz")],
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    name: Annotated[str, typer.Option(help="feature set name in the corpus, e.g. resnet152")],
    ids: Annotated[Path | None, typer.Option(help="npy: the id file naming its rows")] = None,
    model: Annotated[str | None, typer.Option(help="what made the features (recorded in meta.json)")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    batch_size: BatchOpt = 256,
    limit: LimitOpt = None,
    force: ForceOpt = False,
    retry_failed: RetryOpt = False,
) -> None:
    """Import features from research code (BigFile, npy + ids, per-video npz) into the feature store."""
    run_stage_command("import-features", corpus, config=config, sets=set_,
                      overrides={"format": format, "src": str(src), "name": name,
                                 "ids": str(ids) if ids else None, "model": model},
                      batch_size=batch_size, num_shards=1, shard_index=0, limit=limit, force=force,
                      retry_failed=retry_failed, engine="local")


@app.command()
@friendly
def info(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    failures: Annotated[bool, typer.Option(help="list every outstanding failure row")] = False,
) -> None:
    """Rows per split x language x origin, stage history, failures."""
    from ccr.pipeline.info import show

    show(corpus, out, failures=failures)


@app.command()
def models() -> None:
    """The model table: default ids per role and language pair, and their tiny stand-ins."""
    from rich.table import Table

    from ccr.models import describe

    table = Table("role", "default id", "revision", "prefix", "tiny stand-in", "note")
    for row in describe():
        table.add_row(row["role"], row["id"], row["revision"], row["prefix"], row["tiny"], row["note"])
    out.print(table)


@app.command()
@friendly
def demo(
    dest: Annotated[Path, typer.Argument(help="where to write the demo (a fresh directory)")] = Path("ccr-demo"),
    real_models: Annotated[bool, typer.Option(help="use the real default models (needs the hub or a cache)")] = False,
) -> None:
    """Run every stage that exists on the bundled toy corpus and show what it made."""
    from ccr.demo import run_demo

    run_demo(dest, real_models=real_models, console=console, out=out)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
