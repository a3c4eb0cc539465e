"""A corpus whose path holds glob characters (``[x]``, ``*``, a lone ``[``) works like any other.

polars expands ``[`` and ``*`` in a path it is given unless told not to, so such a corpus used to
commit its shards and then fail every read (``expanded paths were empty``), and a noisy copy under
``mk/[/n`` failed with ``invalid glob pattern``. Here the whole flow runs on such paths: ingest,
info, a stage with a tiny model, every export format, noise inject, info of the copy and report.
"""

import json

import polars as pl
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus


def ccr(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_whole_flow_on_paths_with_glob_characters(toy_source, tmp_path):
    corpus = tmp_path / "c[x]*" / "corpus"
    ccr("ingest", corpus, toy_source / "captions.jsonl", "--format", "jsonl")
    assert "failures: 0" in ccr("info", corpus)
    ccr("translate", corpus, "--lang", "de", "--models", "random", "--set", "max_length=8")
    opened = Corpus.open(corpus)
    captions = opened.table("captions")
    assert captions.filter(pl.col("origin") == "mt").height == captions.filter(pl.col("lang") == "en").height > 0

    ccr("export", corpus, "--out", tmp_path / "c[x]*" / "parquet")
    assert pl.read_parquet(tmp_path / "c[x]*" / "parquet" / "captions.parquet", glob=False).height == captions.height
    ccr("export", corpus, "--out", tmp_path / "c[x]*" / "jsonl", "--format", "jsonl")
    lines = (tmp_path / "c[x]*" / "jsonl" / "captions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["caption_id"] for line in lines) == sorted(captions["caption_id"])
    ccr("export", corpus, "--out", tmp_path / "c[x]*" / "nrccr", "--format", "nrccr")
    assert list((tmp_path / "c[x]*" / "nrccr" / "TextData").glob("*.caption.txt"))

    noisy = tmp_path / "mk" / "[" / "n"
    ccr("noise", "inject", corpus, "--out", noisy, "--rate", "0.2", "--type", "copy")
    noise = Corpus.open(noisy).table("captions").filter(pl.col("model").str.ends_with("+noise"))
    assert noise.height == captions.filter(pl.col("origin") == "mt").height
    assert (noise["noise_type"] != "none").sum() > 0
    assert "failures: 0" in ccr("info", noisy)

    report = tmp_path / "c[x]*" / "report"
    assert str(report / "index.html") in ccr("report", corpus, "--out", report).replace("\n", "")
    assert (report / "data" / "meta.js").is_file()
