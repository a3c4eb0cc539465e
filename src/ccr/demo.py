"""``ccr demo``: every stage that exists, on the bundled toy corpus, into a fresh directory.

Each issue that lands a stage adds its step here, so the demo is always the whole pipeline as it
stands. Models are the tiny random stand-ins unless ``--real-models`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccr import paths
from ccr.errors import CcrError
from ccr.printing import say

DEMO_VIDEOS = 4  # short toy videos beside the images, so the visual stages show both paths
TINY_NOTE = "demo models are tiny random stand-ins built on the spot: every score and metric below is meaningless"


def run_demo(dest: Path | str, *, real_models: bool = False, console: Any, out: Any) -> Path:
    """Build ``dest/toy`` (source files), ``dest/corpus`` and ``dest/export``; returns the corpus path."""
    from ccr.corpus.info import show
    from ccr.formats.export import export
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions
    from ccr.testing.toy_corpus import write_toy_corpus

    dest = Path(dest)
    if dest.is_dir() and any(dest.iterdir()):
        raise CcrError(f"{dest} is not empty; give the demo a new directory: ccr demo NEW_DIR")
    paths.output_dir(dest, "demo directory")
    say(console, ("real default models (need a hub or a local cache)" if real_models else TINY_NOTE, "yellow"))
    source = write_toy_corpus(dest / "toy", videos=DEMO_VIDEOS)
    corpus = dest / "corpus"
    options = RunOptions(progress=False)
    steps = [("ingest", lambda: ingest("jsonl", source / "captions.jsonl", corpus, options=options))]
    steps += _translation_steps(corpus, real_models)
    steps += _visual_steps(corpus, real_models)
    steps += _filter_steps(corpus, real_models)
    for name, step in steps:
        summary = step()
        outs = ", ".join(f"{n} {t}" for t, n in summary.rows_out.items())
        say(console, (name, "green"), f": {summary.rows_in} rows in, {outs}, {summary.rows_failed} failed")
    show(corpus, out)
    written = export(corpus, dest / "export" / "parquet", fmt="parquet")
    written += export(corpus, dest / "export" / "nrccr", fmt="nrccr", collection="toy")
    say(console, ("export", "green"), f": {len(written)} files under {dest / 'export'}")
    say(console, f"corpus: {corpus} (dataset card: {corpus / 'README.md'})")
    _train_and_evaluate(dest, corpus, real_models, console, out)
    _planted_noise(dest, corpus, real_models, console, out)
    _report(dest, corpus, console, out)
    return corpus


def _filter_steps(corpus: Path, real_models: bool) -> list[tuple[str, Any]]:
    """score (both views and DCOT) every MT language, then keep the best 80% with normalised weights."""
    from functools import partial

    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run
    from ccr.testing.toy_corpus import TARGET_LANGS

    quiet = RunOptions(progress=False)
    return [("score", partial(run, "score", corpus, overrides={"lang": ",".join(TARGET_LANGS), "tiny": not real_models},
                              options=quiet)),
            ("select", partial(run, "select", corpus, overrides={"top": 80, "weighting": "normalized"}, options=quiet))]


def _planted_noise(dest: Path, corpus: Path, real_models: bool, console: Any, out: Any) -> None:
    """The score summary, then 20% swapped German MT captions in a copy, rescored and checked against the truth."""
    from ccr.filter.noise import inject
    from ccr.filter.noise_eval import evaluate
    from ccr.filter.score import format_summary, summarize
    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run
    from ccr.testing.toy_corpus import TARGET_LANGS

    say(out, format_summary(summarize(corpus, TARGET_LANGS, plot=dest / "scores.png")))
    quiet = RunOptions(progress=False)
    noisy = dest / "noisy"
    summary, keys = inject(corpus, noisy, overrides={"rate": 0.2, "types": "swap", "lang": "de"}, options=quiet)
    say(console, ("noise inject", "green"), f": {summary.rows_out.get('captions', 0)} German MT rows in {noisy} "
        f"(model {keys['de']}), 20% swapped")
    run("score", noisy, overrides={"lang": "de", "mt_model": keys["de"], "tiny": not real_models}, options=quiet)
    result = evaluate(noisy, out=dest / "noise-eval")
    say(out, result.table)
    say(console, ("noise eval", "green"), f": {result.plot_path}")


def _report(dest: Path, corpus: Path, console: Any, out: Any) -> None:
    """Last step, so the researcher ends with something to look at: the corpus as an offline HTML report."""
    from ccr.report import build_report

    summary = build_report(corpus, dest / "report")
    say(console, ("report", "green"), f": {summary.rows} rows, {summary.failures} failures; open it in a browser:")
    say(out, str(summary.index))


def _translation_steps(corpus: Path, real_models: bool) -> list[tuple[str, Any]]:
    """translate -> backtranslate (with the translate-test queries) into every toy language."""
    from functools import partial

    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run
    from ccr.testing.toy_corpus import TARGET_LANGS

    common: dict[str, Any] = {"lang": ",".join(TARGET_LANGS)}
    if not real_models:
        common |= {"tiny": True, "max_length": 16}  # random weights never stop on their own
    return [(name, partial(run, name, corpus, overrides={**common, **extra},
                           options=RunOptions(progress=False, batch_size=1024)))
            for name, extra in (("translate", {}), ("backtranslate", {"test_queries": True}))]

def _visual_steps(corpus: Path, real_models: bool) -> list[tuple[str, Any]]:
    """features -> caption -> slots; tiny models unless real ones were asked for (then the defaults)."""
    from functools import partial

    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run

    tiny = not real_models
    plan = [
        ("features", {"model": "tiny/clip" if tiny else None}, 32),
        ("caption", {"mllm": "tiny/llava" if tiny else None, "max_new_tokens": 48 if tiny else None}, 8),
        ("slots", {"embedder": "tiny/minilm" if tiny else None}, 64),
    ]
    return [(name, partial(run, name, corpus, overrides=overrides,
                           options=RunOptions(progress=False, batch_size=batch_size)))
            for name, overrides, batch_size in plan]


def _train_and_evaluate(dest: Path, corpus: Path, real_models: bool, console: Any, out: Any) -> None:
    """``ccr train --method baseline`` then ``ccr evaluate`` on German test queries.

    Without German MT captions in the corpus (no translate step has run) the baseline trains on
    English captions alone and German is scored zero-shot through the multilingual text tower.
    """
    from ccr.corpus.corpus import Corpus
    from ccr.train.data.rows import translated_languages
    from ccr.train.eval.evaluate import evaluate_run
    from ccr.train.eval.metrics import format_table
    from ccr.train.run.loop import train

    def log(line: str) -> None:
        say(console, line)

    opened = Corpus.open(corpus)
    overrides: dict[str, Any] = {"lang": "de", "epochs": 3, "batch_size": 16, "embed_dim": 64, "media_hidden": 64,
                                 "lr": 1e-3, "progress": False, "text_tower": None if real_models else "tiny/bert"}
    if "de" not in translated_languages(opened):
        overrides["w_mt"] = 0.0
        log("no German MT captions yet: the baseline trains on English captions, German is scored zero-shot")
    if not [n for n in opened.feature_names() if not n.startswith("slots-")]:
        overrides["visual"] = "pixels"
    run_dir = dest / "run"
    result = train(corpus, run_dir, method="baseline", overrides=overrides, log=log)
    say(console, ("train", "green"), f": baseline, {result.epochs} epochs, best epoch {result.best_epoch}; "
        f"run directory {run_dir}")
    say(out, format_table(evaluate_run(run_dir, split="test", langs=["de"], log=log)))
    say(console, ("evaluate", "green"), f": {run_dir / 'eval' / 'test.de.json'}")
