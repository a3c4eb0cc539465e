"""NRCCR export: the round trip through the nrccr reader is byte-identical, and ids are rebuilt."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ccr.errors import CcrError
from ccr.formats.export_nrccr import COLUMNS, write_nrccr
from ccr.formats.ingest import READERS, IngestOptions
from ccr.formats.ingest.records import BadRecord, Caption

# Lines in each file are in (media id, k) order, the order the exporter writes, so the files must
# come back byte for byte. Ids carry the .jpg suffix as the Multi30K NRCCR files do; the fixture has
# human en (two captions per image), en->de and en->fr MT with back-translations, human de val and
# test, de->en translate-test queries, and non-ASCII text.
FIXTURE = {
    "multi30ktrain_enc.caption.txt": [
        "1000092795.jpg#enc#0 Two young guys with shaggy hair look at their hands.",
        "1000092795.jpg#enc#1 Two young, White males are outside near many bushes.",
        "10002456.jpg#enc#0 Several men in hard hats are operating a giant pulley system.",
    ],
    "multi30ktrain_google_enc2de.caption.txt": [
        "1000092795.jpg#enc2de#0 Zwei junge Typen mit zotteligen Haaren betrachten ihre Hände.",
        "1000092795.jpg#enc2de#1 Zwei junge, weiße Männer sind draußen in der Nähe vieler Büsche.",
        "10002456.jpg#enc2de#0 Mehrere Männer mit Schutzhelmen bedienen ein Antriebsradsystem.",
    ],
    "multi30ktrain_google_enc2de2enc.caption.txt": [
        "1000092795.jpg#enc2de2enc#0 Two young guys with shaggy hair look at their hands.",
        "1000092795.jpg#enc2de2enc#1 Two young white men are outside near many bushes.",
        "10002456.jpg#enc2de2enc#0 Several men with hard hats operate a drive wheel system.",
    ],
    "multi30ktrain_google_enc2fr.caption.txt": [
        "1000092795.jpg#enc2fr#0 Deux jeunes gars aux cheveux hirsutes regardent leurs mains.",
        "10002456.jpg#enc2fr#0 Plusieurs hommes en casque font fonctionner un système de poulie géant.",
    ],
    "multi30ktrain_google_enc2fr2enc.caption.txt": [
        "1000092795.jpg#enc2fr2enc#0 Two young guys with shaggy hair look at their hands.",
        "10002456.jpg#enc2fr2enc#0 Several men in helmets operate a giant pulley system.",
    ],
    "multi30kval_de.caption.txt": [
        "1018148011.jpg#de#0 Eine Gruppe von Menschen steht vor einem Iglu.",
    ],
    "multi30ktest_de.caption.txt": [
        "1007129816.jpg#de#0 Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
        "1009434119.jpg#de#0 Ein schwarz-weiß gefleckter Hund rennt über das Gras — „schnell“.",
    ],
    "multi30ktest_google_de2enc.caption.txt": [
        "1007129816.jpg#de2enc#0 A man with an orange hat staring at something.",
        "1009434119.jpg#de2enc#0 A black and white spotted dog runs across the grass - \"fast\".",
    ],
}


def write_fixture(text_dir: Path) -> None:
    text_dir.mkdir(parents=True)
    for name, lines in FIXTURE.items():
        (text_dir / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def captions_frame(records: list[Caption]) -> pl.DataFrame:
    return pl.DataFrame(
        [{c: getattr(r, c) for c in COLUMNS} for r in records],
        schema={c: pl.String for c in COLUMNS},
    )


def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    source = tmp_path / "src" / "TextData"
    write_fixture(source)
    records = list(READERS["nrccr"](source, IngestOptions()))
    assert not [r for r in records if isinstance(r, BadRecord)]
    captions = [r for r in records if isinstance(r, Caption)]
    assert len(captions) == sum(len(lines) for lines in FIXTURE.values())
    # shuffle the rows: the exporter must not depend on the order it is given
    frame = captions_frame(captions).sample(fraction=1.0, shuffle=True, seed=3)
    written = write_nrccr(frame, tmp_path / "out", "multi30k")
    assert [p.name for p in written] == sorted(FIXTURE)
    for path in written:
        assert path.parent == tmp_path / "out" / "TextData"
        assert path.read_bytes() == (source / path.name).read_bytes(), path.name


def test_derived_ids_from_non_nrccr_ids(tmp_path: Path) -> None:
    """COCO-style ids get media#tag#rank, rank by caption id among the item's human captions."""
    rows = [
        ("12", "9", "train", "en", "a plate", "human", None, None),
        ("5", "9", "train", "en", "food on a plate", "human", None, None),
        ("12|mt:ja:opus-mt-en-jap", "9", "train", "ja", "皿", "mt", "12", "opus-mt-en-jap"),
        ("12|mt:ja:opus-mt-en-jap|bt:en:opus-mt-jap-en", "9", "train", "en", "dish", "bt",
         "12|mt:ja:opus-mt-en-jap", "opus-mt-jap-en"),
        ("12|mt:ja:nllb", "9", "train", "ja", "お皿", "mt", "12", "nllb"),
        ("9#ja#0", "9", "test", "ja", "料理", "human", None, None),
        ("9#ja#0|mt:en:opus", "9", "test", "en", "cooking\nfood", "mt", "9#ja#0", "opus"),
    ]
    frame = pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS}, orient="row")
    written = write_nrccr(frame, tmp_path, "coco")
    content = {p.name: p.read_text(encoding="utf-8") for p in written}
    assert content == {
        "cocotrain_enc.caption.txt": "9#enc#0 a plate\n9#enc#1 food on a plate\n",
        "cocotrain_opus-mt-en-jap_enc2ja.caption.txt": "9#enc2ja#0 皿\n",
        "cocotrain_nllb_enc2ja.caption.txt": "9#enc2ja#0 お皿\n",
        "cocotrain_opus-mt-jap-en_enc2ja2enc.caption.txt": "9#enc2ja2enc#0 dish\n",
        "cocotest_ja.caption.txt": "9#ja#0 料理\n",
        "cocotest_opus_ja2enc.caption.txt": "9#ja2enc#0 cooking food\n",
    }
    back = [r for r in READERS["nrccr"](tmp_path / "TextData", IngestOptions()) if isinstance(r, Caption)]
    assert {(c.caption_id, c.model) for c in back if c.lang == "ja" and c.origin == "mt"} == {
        ("9#enc#0|mt:ja:opus-mt-en-jap", "opus-mt-en-jap"),
        ("9#enc#0|mt:ja:nllb", "nllb"),
    }


def test_lines_sort_by_media_then_numeric_k(tmp_path: Path) -> None:
    rows = [(f"v#enc#{k}", "v", "train", "en", f"t{k}", "human", None, None) for k in (10, 2, 0)]
    rows.append(("a#enc#3", "a", "train", "en", "first media", "human", None, None))
    frame = pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS}, orient="row")
    (path,) = write_nrccr(frame, tmp_path, "c")
    assert path.read_text() == "a#enc#3 first media\nv#enc#0 t0\nv#enc#2 t2\nv#enc#10 t10\n"


def test_unexportable_tables_fail_with_the_reason(tmp_path: Path) -> None:
    schema = {c: pl.String for c in COLUMNS}
    orphan = pl.DataFrame([("x|mt:de:m", "x", "train", "de", "t", "mt", "x", "m")], schema=schema, orient="row")
    with pytest.raises(CcrError, match="parent 'x', which is not in the table"):
        write_nrccr(orphan, tmp_path, "c")
    bad_key = pl.DataFrame(
        [("x#enc#0", "x", "train", "en", "t", "human", None, None),
         ("x#enc#0|mt:de:a_b", "x", "train", "de", "t", "mt", "x#enc#0", "a_b")],
        schema=schema, orient="row",
    )
    with pytest.raises(CcrError, match="model key 'a_b'"):
        write_nrccr(bad_key, tmp_path, "c")
    pivot = pl.DataFrame(
        [("x#de#0", "x", "test", "de", "t", "human", None, None),
         ("x#de#0|mt:fr:m", "x", "test", "fr", "t", "mt", "x#de#0", "m")],
        schema=schema, orient="row",
    )
    with pytest.raises(CcrError, match="none of en->xx MT"):
        write_nrccr(pivot, tmp_path, "c")
    with pytest.raises(CcrError, match="lacks parent_id, model"):
        write_nrccr(pivot.drop("parent_id", "model"), tmp_path, "c")
