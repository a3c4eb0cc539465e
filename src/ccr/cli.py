"""The ``ccr`` command line: parsing only; every command calls a library function.

Heavy libraries (torch, transformers, datasets, polars, ray) are imported inside the functions the
commands call, so ``ccr --help`` answers at once.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ccr.errors import CcrError
from ccr.printing import plain_console, say

app = typer.Typer(
    name="ccr",
    help="Cross-lingual cross-modal retrieval: build multilingual pseudo-parallel corpora and train retrieval models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = plain_console(stderr=True)  # messages and summaries; every string prints as itself (ccr.printing)
out = plain_console()  # what a command produces: paths, tables

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """User mistakes become one red line and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CcrError as e:
            say(console, ("error:", "bold red"), f" {e}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during a stage run (ccr.stages.interrupt)
            signum = getattr(e, "signum", 2)
            what = "terminated" if signum == 15 else "interrupted"
            say(console, (what, "yellow"),
                ": what was finished is kept (committed shards, checkpoints); run the same command again to resume")
            raise typer.Exit(128 + signum) from None

    return wrapper  # type: ignore[return-value]


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file with option overrides")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override one option: key=value (repeatable)")]
ShardsOpt = Annotated[int, typer.Option(help="split the stage into N independent workers")]
IndexOpt = Annotated[int, typer.Option(help="which worker this is (0..N-1)")]
LimitOpt = Annotated[int | None, typer.Option(
    help="only the first N rows of the whole plan in id order (whole groups where a stage groups rows); "
         "rerunning finishes them")]
ForceOpt = Annotated[bool, typer.Option(help="redo the stage from scratch (same config)")]
RetryOpt = Annotated[bool, typer.Option(help="process rows that failed before again")]
EngineOpt = Annotated[str, typer.Option(help="local, or ray (Ray Data actor pool; RAY_ADDRESS joins a cluster)")]


_RUNNER_OPTIONS: dict[str, tuple[Any, Any]] = {  # the stage runner's options: annotation, default
    "num_shards": (ShardsOpt, 1), "shard_index": (IndexOpt, 0), "limit": (LimitOpt, None), "force": (ForceOpt, False),
    "retry_failed": (RetryOpt, False), "engine": (EngineOpt, "local"),
}
SHARDED = tuple(_RUNNER_OPTIONS)  # a stage that any number of workers can share


@dataclass
class Runner:
    """What a stage command's runner options became: the config layers and the ``RunOptions``."""

    config: Path | None
    sets: list[str] | None
    options: Any


def runner_options(batch_size: int, runner: tuple[str, ...] = SHARDED, batch_help: str = "rows per batch",
                   limit_help: str | None = None) -> Callable[[F], F]:
    """Give a command ``--config``, ``--set``, ``--batch-size`` and the ``runner`` options it supports.

    Typer reads the command's signature, so the shared options are appended to it here, once, and
    reach the command as one ``runner: Runner`` argument instead of nine parameters per stage.
    ``limit_help`` says what ``--limit`` counts where a stage's rows are not ids (ingest's entries).
    """
    annotations = {name: annotation for name, (annotation, _) in _RUNNER_OPTIONS.items()}
    if limit_help:
        annotations["limit"] = Annotated[int | None, typer.Option(help=limit_help)]

    def decorate(fn: F) -> F:
        kw = inspect.Parameter.KEYWORD_ONLY
        shared = [inspect.Parameter("config", kw, default=None, annotation=ConfigOpt),
                  inspect.Parameter("set_", kw, default=None, annotation=SetOpt),
                  inspect.Parameter("batch_size", kw, default=batch_size,
                                    annotation=Annotated[int, typer.Option(help=batch_help)])]
        shared += [inspect.Parameter(name, kw, default=_RUNNER_OPTIONS[name][1], annotation=annotations[name])
                   for name in runner]
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "runner"]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            from ccr.stages.runner import RunOptions

            values = {p.name: kwargs.pop(p.name) for p in shared}
            config, sets = values.pop("config"), values.pop("set_")
            return fn(*args, runner=Runner(config, sets, RunOptions(**values)), **kwargs)

        command.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
        return command  # type: ignore[return-value]

    return decorate


def run_stage_command(name: str, corpus: Path, runner: Runner, overrides: dict[str, Any]) -> Any:
    """What every stage command does after parsing: resolve the config, run, print the summary."""
    from ccr.stages.table import run

    summary = run(name, corpus, config=runner.config, sets=runner.sets, overrides=overrides, options=runner.options,
                  on_config=_print_config)
    _print_summary(summary)
    return summary


def _print_config(stage: str, cfg: Any) -> None:
    from ccr.config import to_dict

    items = ", ".join(f"{k}={v!r}" for k, v in to_dict(cfg).items() if v not in (None, {}, [], ""))
    say(console, (f"{stage} config: {items}", "dim"))


def _print_summary(summary: Any) -> None:
    outs = ", ".join(f"{n} {t}" for t, n in summary.rows_out.items()) or "nothing new"
    line = f": {summary.rows_in} rows in, {outs}, {summary.rows_failed} failed, {summary.seconds:.1f}s"
    if summary.skipped_chunks:
        line += f" ({summary.skipped_chunks} shards already done)"
    say(console, (summary.stage, "green"), line)
    for reason, n in sorted(summary.failure_reasons.items(), key=lambda kv: -kv[1])[:5]:
        say(console, (f"  {n} x", "yellow"), f" {reason}")
    if summary.rows_failed:
        say(console, "  see them with: ccr info CORPUS --failures")


@app.command()
@friendly
@runner_options(1024, ("limit", "force"), limit_help="only the first N source entries (lines, or JSON entries) in "
                                                    "file order; a later run without it adds exactly the rest")
def ingest(
    format: Annotated[str, typer.Argument(help="coco, karpathy, multi30k, vatex, qvhighlights, charades, tacos, "
                                               "nrccr, jsonl, csv, parquet")],
    src: Annotated[Path, typer.Argument(help="source file or directory")],
    corpus: Annotated[Path, typer.Argument(help="corpus directory (created if missing)")],
    media_root: Annotated[Path | None, typer.Option(help="where media paths are relative to (default: next to SRC)")] = None,
    split: Annotated[str | None, typer.Option(
        help="the split of every entry, over what the source or its file name says: train, val, test or a named "
             "test_*/val_* split (default: the source's; train for a new item where nothing says)")] = None,
    lang: Annotated[str | None, typer.Option(help="caption language where the format does not say")] = None,
    modality: Annotated[str | None, typer.Option(help="image or video, where the format does not say")] = None,
    column: Annotated[list[str] | None, typer.Option(help="generic formats: OURS=THEIRS column mapping")] = None,
    verify_media: Annotated[bool, typer.Option(help="open every media file; unreadable ones become failures")] = False,
    *,
    runner: Runner,
) -> None:
    """Read a dataset in one of the field's formats into a corpus directory."""
    from ccr.formats.ingest.generic import parse_columns
    from ccr.formats.ingest.stage import ingest as run_ingest

    columns = parse_columns(column or [])
    summary = run_ingest(format, src, corpus, media_root=media_root, split=split, lang=lang, modality=modality,
                         columns=columns, verify_media=verify_media, config=runner.config, sets=runner.sets,
                         options=runner.options, on_config=_print_config)
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
    from ccr.formats.export import export as run_export

    written = run_export(corpus, dest, fmt=format, collection=collection, features=features or [],
                         langs=lang, splits=split)
    for path in written:
        say(out, str(path))
    say(console, ("export", "green"), f": {len(written)} files in {dest}")


@app.command("import-features")
@friendly
@runner_options(256, ("limit", "force", "retry_failed"))
def import_features(
    format: Annotated[str, typer.Argument(help="bigfile, npy or npz")],
    src: Annotated[Path, typer.Argument(help="BigFile directory, .npy file, or directory of <vid>.npz")],
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    name: Annotated[str, typer.Option(help="feature set name in the corpus, e.g. resnet152")],
    ids: Annotated[Path | None, typer.Option(help="npy: the id file naming its rows")] = None,
    model: Annotated[str | None, typer.Option(help="what made the features (recorded in meta.json)")] = None,
    *,
    runner: Runner,
) -> None:
    """Import features from research code (BigFile, npy + ids, per-video npz) into the feature store."""
    run_stage_command("import-features", corpus, runner,
                      overrides={"format": format, "src": str(src), "name": name,
                                 "ids": str(ids) if ids else None, "model": model})


@app.command()
@friendly
def info(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    failures: Annotated[bool, typer.Option(
        help="outstanding failures by stage and reason, with a few example ids (and file:line)")] = False,
) -> None:
    """Rows per split x language x origin, stage history, failures."""
    from ccr.corpus.info import show

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
    models: Annotated[str, typer.Option(help="random: tiny random stand-ins, numbers meaningless; real: the default "
                                             "hub models (need the hub or a cache)")] = "random",
    old_real_models: Annotated[bool, typer.Option("--real-models", hidden=True)] = False,
) -> None:
    """Run the demo recipe (every stage, training, noise and checks) on the bundled toy corpus."""
    from ccr.demo import run_demo

    if old_real_models:
        raise CcrError("--real-models is now --models real")
    run_demo(dest, models=models, console=console, out=out)


DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps (default: auto)")]
MediaRootOpt = Annotated[Path | None, typer.Option(help="where media paths are relative to (default: the manifest's)")]
ModalityOpt = Annotated[str | None, typer.Option(help="only image or only video rows")]


@app.command()
@friendly
@runner_options(32)
def features(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    model: Annotated[str | None, typer.Option(help="CLIP hub id or local path (default: openai/clip-vit-base-patch32)")] = None,
    variant: Annotated[str | None, typer.Option(help="pooled, patches (every token) or clips2s (2 s clips)")] = None,
    frames: Annotated[int | None, typer.Option(help="video frames, uniformly sampled (default: 8)")] = None,
    fps: Annotated[float | None, typer.Option(help="sample videos at this rate instead of --frames")] = None,
    modality: ModalityOpt = None,
    device: DeviceOpt = None,
    media_root: MediaRootOpt = None,
    *,
    runner: Runner,
) -> None:
    """CLIP embeddings of every image and video frame into features/NAME/ (float16, keyed by media_id)."""
    run_stage_command("features", corpus, runner,
                      overrides={"model": model, "variant": variant, "frames": frames, "fps": fps, "modality": modality,
                                 "device": device, "media_root": str(media_root) if media_root else None})


@app.command()
@friendly
@runner_options(8)
def caption(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    mllm: Annotated[str | None, typer.Option(help="llava, llava_next, llava_onevision, llava_next_video, "
                                                   "a hub id or a local path (default: llava)")] = None,
    prompt: Annotated[list[str] | None, typer.Option(help="prompt id: detailed, objects, actions, scene, attributes, "
                                                          "or multiview (repeatable) (default: detailed)")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="longest description in tokens (default: 256)")] = None,
    frames: Annotated[int | None, typer.Option(help="frames a video gives the model (default: 4)")] = None,
    modality: ModalityOpt = None,
    device: DeviceOpt = None,
    media_root: MediaRootOpt = None,
    *,
    runner: Runner,
) -> None:
    """Detailed MLLM descriptions of every image and video into descriptions/ (greedy, batched)."""
    run_stage_command("caption", corpus, runner,
                      overrides={"mllm": mllm, "prompts": prompt or None, "max_new_tokens": max_new_tokens,
                                 "frames": frames, "modality": modality, "device": device,
                                 "media_root": str(media_root) if media_root else None})


@app.command()
@friendly
@runner_options(64)
def slots(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    k: Annotated[int | None, typer.Option("--k", help="slots per item (default: 4)")] = None,
    embedder: Annotated[str | None, typer.Option(help="sentence-transformers id or path "
                                                       "(default: sentence-transformers/all-MiniLM-L6-v2)")] = None,
    mllm: Annotated[str | None, typer.Option(help="model key of the descriptions to use, when several")] = None,
    prompt: Annotated[list[str] | None, typer.Option(help="only descriptions with this prompt id (repeatable)")] = None,
    device: DeviceOpt = None,
    *,
    runner: Runner,
) -> None:
    """Cluster each item's description sentences into K semantic slots (LECCR) with vectors and texts."""
    run_stage_command("slots", corpus, runner,
                      overrides={"k": k, "embedder": embedder, "mllm": mllm, "prompts": prompt or None,
                                 "device": device})


MtLangOpt = Annotated[str, typer.Option(help="the non-English language(s), comma-separated: cs or de,fr,cs")]
MtModelOpt = Annotated[list[str] | None, typer.Option(
    help="Marian (OPUS-MT) hub id or local path; LANG=ID_OR_PATH with several languages (repeatable) (default: ccr models)")]
PrefixOpt = Annotated[list[str] | None, typer.Option(
    help="target token of a multi-target model, e.g. '>>ces<<'; LANG=TOKEN with several languages")]
BeamOpt = Annotated[int | None, typer.Option(help="beam size; 1 = greedy (default: 4)")]
MaxLengthOpt = Annotated[int | None, typer.Option(help="most target tokens per caption (default: 256)")]
ComputeOpt = Annotated[str | None, typer.Option(help="auto (int8 on CPU, int8_float16 on CUDA), int8, float32, ... (default: auto)")]
TinyOpt = Annotated[bool, typer.Option(help="use the tiny random stand-in models (outputs are meaningless)")]


@app.command()
@friendly
@runner_options(1024)
def translate(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    lang: MtLangOpt,
    model: MtModelOpt = None,
    prefix: PrefixOpt = None,
    split: Annotated[str | None, typer.Option(help="only English captions of these splits (comma-separated)")] = None,
    beam_size: BeamOpt = None,
    max_length: MaxLengthOpt = None,
    compute_type: ComputeOpt = None,
    device: DeviceOpt = None,
    tiny: TinyOpt = False,
    *,
    runner: Runner,
) -> None:
    """Machine-translate English captions (Marian through CTranslate2) with log-prob, length ratio and copy flags."""
    run_stage_command("translate", corpus, runner,
                      overrides={"lang": lang, "model": model or None, "prefix": prefix or None, "split": split,
                                 "beam_size": beam_size, "max_length": max_length, "compute_type": compute_type,
                                 "device": device, "tiny": tiny or None})


@app.command()
@friendly
@runner_options(1024)
def backtranslate(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    lang: MtLangOpt,
    mt_model: Annotated[list[str] | None, typer.Option(
        help="model key of the MT rows to back-translate, where a language has several (repeatable)")] = None,
    test_queries: Annotated[bool, typer.Option(
        help="also translate the human val/test captions of these languages into English")] = False,
    embedder: Annotated[str | None, typer.Option(
        help="sentence-transformers id or path for rt_sim (default: sentence-transformers/all-MiniLM-L6-v2)")] = None,
    model: MtModelOpt = None,
    prefix: PrefixOpt = None,
    beam_size: BeamOpt = None,
    max_length: MaxLengthOpt = None,
    compute_type: ComputeOpt = None,
    device: DeviceOpt = None,
    tiny: TinyOpt = False,
    *,
    runner: Runner,
) -> None:
    """Back-translate MT captions into English (with rt_sim), and with --test-queries translate test captions."""
    run_stage_command("backtranslate", corpus, runner,
                      overrides={"lang": lang, "mt_model": mt_model or None, "test_queries": test_queries or None,
                                 "embedder": embedder, "model": model or None, "prefix": prefix or None,
                                 "beam_size": beam_size, "max_length": max_length, "compute_type": compute_type,
                                 "device": device, "tiny": tiny or None})


@app.command()
@friendly
def train(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="run directory; resumed if it holds a checkpoint")],
    method: Annotated[str, typer.Option(help="training method: baseline, or any name in ccr.train.model.methods")] = "baseline",
    lang: Annotated[str | None, typer.Option(help="target language(s) of the MT captions, comma-separated (default: de)")] = None,
    mt_model: Annotated[str | None, typer.Option(help="model key of the MT rows, where a language has several")] = None,
    visual: Annotated[str | None, typer.Option(help="feature set NAME, auto (the only one) or pixels (default: auto)")] = None,
    text_tower: Annotated[str | None, typer.Option(help="text encoder: text-tower, xlmr, hub id, tiny/bert or path")] = None,
    video_encoder: Annotated[str | None, typer.Option(
        help="visual tower: pool (frame MLP + pooling) or rivrl (RIVRL's preview + intensive reading) (default: pool)")] = None,
    epochs: Annotated[int | None, typer.Option(help="at most this many epochs (default: 50)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="global batch size, split over DDP processes (default: 128)")] = None,
    device: DeviceOpt = None,
    fresh: Annotated[bool, typer.Option(help="start over, discarding checkpoints already in --out")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train a retrieval model on a corpus (torchrun --nproc-per-node N $(which ccr) train ... for DDP)."""
    from ccr.train.run.loop import train as run_train

    result = run_train(corpus, out_dir, method=method, config=config, sets=set_, fresh=fresh,
                       overrides={"lang": lang, "mt_model": mt_model, "visual": visual, "text_tower": text_tower,
                                  "video_encoder": video_encoder, "epochs": epochs, "batch_size": batch_size,
                                  "device": device},
                       log=functools.partial(say, console),
                       on_config=lambda cfg, method_cfg: (_print_config("train", cfg), _print_config(method, method_cfg)))
    if not result.main:
        return
    say(console, ("train", "green"), f": {result.epochs} epochs, best epoch {result.best_epoch} "
        f"(validation {result.best_value:.2f}), {result.samples_per_second:.0f} samples/s; "
        f"evaluate with: ccr evaluate {result.run_dir}")


@app.command()
@friendly
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
    lang: Annotated[str | None, typer.Option(help="query language(s), comma-separated (default: the run's)")] = None,
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


@app.command()
@friendly
@runner_options(8, batch_help="DCOT groups per batch")
def score(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    lang: MtLangOpt,
    mt_model: FilterMtModelOpt = None,
    embedder: Annotated[str | None, typer.Option(
        help="multilingual sentence embedder for xl_sim (default: ccr models, role multilingual-embedder)")] = None,
    mclip_text: Annotated[str | None, typer.Option(
        help="multilingual CLIP text encoder for xm_sim (default: ccr models, role mclip-text)")] = None,
    features: Annotated[str | None, typer.Option(help="feature set NAME (default: the only pooled CLIP set)")] = None,
    group_size: Annotated[int | None, typer.Option(help="pairs per random DCOT group (default: 64)")] = None,
    view_weight: Annotated[float | None, typer.Option(
        help="share of the cross-lingual view in the DCOT cost, in [0, 1] (default: 0.5)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the random groups (default: 0)")] = None,
    plot: Annotated[Path | None, typer.Option(help="also write score histograms to this PNG")] = None,
    device: DeviceOpt = None,
    tiny: TinyOpt = False,
    *,
    runner: Runner,
) -> None:
    """Score MT captions: xl_sim (English↔MT), xm_sim (visual↔MT), dcot_conf (dual-view OT confidence)."""
    from ccr.filter.score import format_summary, summarize

    run_stage_command("score", corpus, runner,
                      overrides={"lang": lang, "mt_model": mt_model or None, "embedder": embedder,
                                 "mclip_text": mclip_text, "features": features, "group_size": group_size,
                                 "view_weight": view_weight, "seed": seed, "device": device, "tiny": tiny or None})
    langs = [x.strip() for x in lang.split(",") if x.strip()]
    say(out, format_summary(summarize(corpus, langs, mt_model or [], plot=plot)))
    if plot:
        say(console, ("plot", "green"), f": {plot}")


@app.command()
@friendly
@runner_options(4096, ("force",))
def select(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    top: Annotated[float | None, typer.Option(help="keep the best P percent of each language's MT rows by --by")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        help="COLUMN=MIN: keep rows whose score is at least MIN, e.g. xl_sim=0.5 (repeatable)")] = None,
    by: Annotated[str | None, typer.Option(help="score for --top and --weighting (default: dcot_conf)")] = None,
    weighting: Annotated[str | None, typer.Option(
        help="none, score (clipped to [0, 1]), normalized (mean 1 over kept rows) or rank (default: none)")] = None,
    lang: Annotated[str | None, typer.Option(help="only these MT languages, comma-separated (default: all)")] = None,
    mt_model: FilterMtModelOpt = None,
    *,
    runner: Runner,
) -> None:
    """Turn scores into keep and weight columns (thresholds, top percent, soft weights) for the trainer."""
    from ccr.filter.select import kept_summary

    run_stage_command("select", corpus, runner,
                      overrides={"top": top, "threshold": threshold or None, "by": by, "weighting": weighting,
                                 "lang": lang, "mt_model": mt_model or None})
    langs = [x.strip() for x in lang.split(",") if x.strip()] if lang else []
    for row in kept_summary(corpus, langs, mt_model or []):
        say(out, f"{row['lang']}: kept {row['kept']} of {row['rows']} MT rows, mean weight {row['mean_weight']:.3f}")


pipeline_app = typer.Typer(help="Run a recipe (configs/*.toml): stages from ingest to evaluate, resumable.",
                           no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
@friendly
def pipeline_run(
    recipe: Annotated[Path, typer.Argument(help="recipe TOML, e.g. configs/multi30k.toml")],
    data_root: Annotated[Path | None, typer.Option(help="where the source files are (pipeline.data_root)")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="corpus and runs go here (pipeline.work_dir)")] = None,
    models: Annotated[str | None, typer.Option(
        help="random: tiny random stand-ins and one short epoch, to check files and layout in minutes (numbers "
             "meaningless); real: the recipe's models (pipeline.models)")] = None,
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


@noise_app.command("inject")
@friendly
@runner_options(4096, ())
def noise_inject(
    corpus: Annotated[Path, typer.Argument(help="corpus directory (left unchanged)")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="the noisy copy (a new directory; rerun to resume)")],
    rate: Annotated[float | None, typer.Option(help="share of each language's MT rows made noisy (default: 0.2)")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="swap,drop,replace,copy,truncate: types taking turns "
                                                             "(default: swap)")] = None,
    seed: Annotated[int | None, typer.Option(help="which rows, partners and words (default: 0)")] = None,
    lang: Annotated[str | None, typer.Option(help="only these MT languages, comma-separated (default: all)")] = None,
    mt_model: FilterMtModelOpt = None,
    *,
    runner: Runner,
) -> None:
    """Copy a corpus and add noisy MT rows (model KEY+noise) with the truth in noise_type."""
    from ccr.filter.noise import inject

    summary, keys = inject(corpus, out_dir, config=runner.config, sets=runner.sets,
                           overrides={"rate": rate, "types": type_, "seed": seed, "lang": lang,
                                      "mt_model": mt_model or None},
                           options=runner.options, on_config=_print_config)
    _print_summary(summary)
    for lang_, key in keys.items():
        say(console, f"score the noisy {lang_} rows: ccr score {out_dir} --lang {lang_} --mt-model {key}")


@noise_app.command("eval")
@friendly
def noise_eval(
    corpus: Annotated[Path, typer.Argument(help="a noisy corpus made by ccr noise inject, scored")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="where the table, JSON and plot go "
                                                                    "(default: CORPUS-noise-eval next to it)")] = None,
    lang: Annotated[str | None, typer.Option(help="only these MT languages, comma-separated")] = None,
    mt_model: FilterMtModelOpt = None,
) -> None:
    """AUROC and precision at the kept fraction of every score against the planted noise, with histograms."""
    from ccr.filter.noise_eval import evaluate

    langs = [x.strip() for x in lang.split(",") if x.strip()] if lang else []
    result = evaluate(corpus, langs=langs, mt_model=mt_model or [], out=out_dir)
    say(out, result.table)
    say(console, ("noise eval", "green"), f": {result.table_path}, {result.json_path}, {result.plot_path}")


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
