"""Every ingest reader on small files written here, including the bad inputs each must survive."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ccr.errors import CcrError
from ccr.formats.ingest import READERS, IngestOptions, formats, reader
from ccr.formats.ingest.records import BadRecord, Caption, Media


def run(fmt: str, src: Path, **opts: object) -> tuple[list[Media], list[Caption], list[BadRecord]]:
    records = list(READERS[fmt](src, IngestOptions(**opts)))  # type: ignore[arg-type]
    media = [r for r in records if isinstance(r, Media)]
    captions = [r for r in records if isinstance(r, Caption)]
    bad = [r for r in records if isinstance(r, BadRecord)]
    assert len(media) + len(captions) + len(bad) == len(records)
    return media, captions, bad


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


# registry


def test_registry_lists_every_format() -> None:
    assert formats() == sorted(
        ["coco", "karpathy", "multi30k", "vatex", "qvhighlights", "charades", "tacos", "nrccr", "jsonl", "csv", "parquet"]
    )
    assert reader("coco") is READERS["coco"]
    with pytest.raises(CcrError, match="unknown ingest format 'cocoa'.*coco"):
        reader("cocoa")


def test_importing_the_registry_loads_no_table_library() -> None:
    code = (
        "import sys, ccr.formats.ingest\n"
        "heavy = [m for m in ('polars', 'pyarrow', 'numpy', 'torch') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# COCO and Karpathy


def coco_doc() -> dict[str, object]:
    return {
        "images": [
            {"id": 9, "file_name": "COCO_val2014_000000000009.jpg"},
            {"id": 25, "file_name": "COCO_val2014_000000000025.jpg"},
            {"id": "bad", "file_name": 3},
        ],
        "annotations": [
            {"id": 100, "image_id": 9, "caption": "A plate of food."},
            {"id": 101, "image_id": 9, "caption": ""},
            {"id": 102, "image_id": 25, "caption": "Ein Zebra."},
            {"id": 103, "image_id": 777, "caption": "Image not listed."},
            {"id": 104, "image_id": 25},
            {"image_id": 25, "caption": "no id"},
        ],
    }


def test_coco_maps_ids_split_and_keeps_records_for_the_ingest_checks(tmp_path: Path) -> None:
    src = tmp_path / "captions_val2014.json"
    src.write_text(json.dumps(coco_doc()))
    media, captions, bad = run("coco", src)
    assert [(m.media_id, m.path, m.split, m.modality) for m in media] == [
        ("9", "COCO_val2014_000000000009.jpg", "val", "image"),
        ("25", "COCO_val2014_000000000025.jpg", "val", "image"),
    ]
    assert [(c.caption_id, c.media_id, c.text, c.lang, c.split, c.origin) for c in captions] == [
        ("100", "9", "A plate of food.", "en", "val", "human"),
        ("101", "9", "", "en", "val", "human"),
        ("102", "25", "Ein Zebra.", "en", "val", "human"),
        ("103", "777", "Image not listed.", "en", "val", "human"),
    ]
    assert [b.source for b in bad] == [f"{src}:images[2]", f"{src}:annotations[4]", f"{src}:annotations[5]"]
    assert bad[1].row_id == "104" and "caption" in bad[1].reason


def test_coco_split_and_language_options(tmp_path: Path) -> None:
    src = tmp_path / "captions_restval2014.json"
    src.write_text(json.dumps(coco_doc()))
    media, captions, _ = run("coco", src)
    assert {m.split for m in media} == {"train"}
    other = tmp_path / "stair.json"
    other.write_text(json.dumps(coco_doc()))
    media, captions, _ = run("coco", other, lang="ja")  # no split stated: open (a new media row is train)
    assert {m.split for m in media} == {None} and {c.lang for c in captions} == {"ja"}
    media, captions, _ = run("coco", other, split="test")
    assert {m.split for m in media} == {"test"} and {c.split for c in captions} == {"test"}


def test_coco_without_annotations_is_an_error_naming_the_file(tmp_path: Path) -> None:
    src = tmp_path / "instances_train2014.json"
    src.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(CcrError, match=r"instances_train2014\.json.*annotations"):
        run("coco", src)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(CcrError, match=r"broken\.json: not valid JSON"):
        run("coco", broken)
    with pytest.raises(CcrError, match="absent.json does not exist"):
        run("coco", tmp_path / "absent.json")


def test_karpathy_ids_paths_and_restval(tmp_path: Path) -> None:
    doc = {
        "images": [
            {
                "filepath": "val2014",
                "filename": "COCO_val2014_000000391895.jpg",
                "cocoid": 391895,
                "imgid": 0,
                "split": "restval",
                "sentences": [{"raw": "A man riding a bike.", "sentid": 770337}, {"raw": 5, "sentid": 770338}],
            },
            {
                "filename": "1000092795.jpg",
                "imgid": 1,
                "split": "test",
                "sentences": [{"raw": "Two young guys.", "sentid": 0}],
            },
            {"filename": "x.jpg", "imgid": 2, "sentences": []},
        ]
    }
    src = tmp_path / "dataset_coco.json"
    src.write_text(json.dumps(doc))
    media, captions, bad = run("karpathy", src)
    assert [(m.media_id, m.path, m.split) for m in media] == [
        ("391895", "val2014/COCO_val2014_000000391895.jpg", "train"),
        ("1000092795", "1000092795.jpg", "test"),
    ]
    assert [(c.caption_id, c.media_id, c.split, c.text) for c in captions] == [
        ("770337", "391895", "train", "A man riding a bike."),
        ("0", "1000092795", "test", "Two young guys."),
    ]
    assert [b.source for b in bad] == [f"{src}:images[0].sentences[1]", f"{src}:images[2]"]
    assert "split" in bad[1].reason


# Multi30K


def multi30k_tree(root: Path) -> Path:
    raw = root / "data" / "task1" / "raw"
    splits = root / "data" / "task1" / "image_splits"
    write_lines(splits / "train.txt", [b"1000092795.jpg", b"10002456.jpg", b"1000268201.jpg"])
    write_lines(raw / "train.en", [b"Two young guys.", b"Several men in hard hats.", b"A child in a pink dress."])
    write_lines(raw / "train.de", [b"Zwei junge Typen.", b"Mehrere M\xc3\xa4nner.", b"Ein Kind."])
    write_lines(splits / "val.txt", [b"1018148011.jpg"])
    write_lines(raw / "val.fr", [b"Un groupe de personnes."])
    write_lines(splits / "test_2016_flickr.txt", [b"1007129816.jpg", b"1009434119.jpg"])
    with gzip.open(raw / "test_2016_flickr.cs.gz", "wb") as fh:
        fh.write("Muž s oranžovým kloboukem.\nPes.\n".encode())
    write_lines(splits / "test_2017_mscoco.txt", [b"COCO_val2014_000000398076.jpg#657409"])
    write_lines(raw / "test_2017_mscoco.en", [b"A train."])
    return raw


def test_multi30k_public_layout(tmp_path: Path) -> None:
    multi30k_tree(tmp_path)
    media, captions, bad = run("multi30k", tmp_path)
    assert bad == []
    by_id = {m.media_id: m for m in media}
    assert by_id["1000092795"].path == "1000092795.jpg" and by_id["1000092795"].split == "train"
    assert by_id["1018148011"].split == "val"
    assert by_id["1007129816"].split == "test"
    assert by_id["COCO_val2014_000000398076"].split == "test_2017_mscoco"
    assert by_id["COCO_val2014_000000398076"].path == "COCO_val2014_000000398076.jpg"
    got = {c.caption_id: (c.media_id, c.lang, c.split, c.text) for c in captions}
    assert got["10002456#de#0"] == ("10002456", "de", "train", "Mehrere Männer.")
    assert got["1000268201#en#0"] == ("1000268201", "en", "train", "A child in a pink dress.")
    assert got["1009434119#cs#0"] == ("1009434119", "cs", "test", "Pes.")
    assert got["1007129816#cs#0"][3] == "Muž s oranžovým kloboukem."
    assert len(captions) == 3 + 3 + 1 + 2 + 1


def test_multi30k_single_file_reads_its_split_and_takes_a_split_label(tmp_path: Path) -> None:
    raw = multi30k_tree(tmp_path)
    media, captions, _ = run("multi30k", raw / "test_2017_mscoco.en", split="test")
    assert [(m.media_id, m.split) for m in media] == [("COCO_val2014_000000398076", "test")]
    assert [c.caption_id for c in captions] == ["COCO_val2014_000000398076#en#0"]
    with pytest.raises(CcrError, match="would put the Multi30K splits"):
        run("multi30k", tmp_path, split="train")


def test_multi30k_misaligned_files_name_both_files(tmp_path: Path) -> None:
    raw = multi30k_tree(tmp_path)
    write_lines(raw / "train.de", [b"Zwei junge Typen.", b"Mehrere M\xc3\xa4nner."])
    with pytest.raises(CcrError, match=r"train\.txt has 3 lines but .*train\.de has 2"):
        run("multi30k", tmp_path)


def test_multi30k_invalid_utf8_line_costs_one_caption(tmp_path: Path) -> None:
    raw = multi30k_tree(tmp_path)
    write_lines(raw / "train.de", [b"Zwei junge Typen.", b"M\xe4nner", b"Ein Kind."])
    _, captions, bad = run("multi30k", raw / "train.de")
    assert [(b.source, b.row_id) for b in bad] == [(f"{raw / 'train.de'}:2", "10002456#de#0")]
    assert "UTF-8" in bad[0].reason
    assert [c.caption_id for c in captions if c.lang == "de"] == ["1000092795#de#0", "1000268201#de#0"]


def test_multi30k_plain_directory_with_images_lists(tmp_path: Path) -> None:
    write_lines(tmp_path / "val_images.txt", [b"a.jpg", b"b.jpg"])
    write_lines(tmp_path / "val.en", [b"first", b"second"])
    write_lines(tmp_path / "val.de", [b"erste", b"zweite"])
    media, captions, _ = run("multi30k", tmp_path)
    assert [m.media_id for m in media] == ["a", "b"]
    assert sorted(c.caption_id for c in captions) == ["a#de#0", "a#en#0", "b#de#0", "b#en#0"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CcrError, match="no Multi30K text files"):
        run("multi30k", empty)


# VATEX


def test_vatex_both_languages_are_human(tmp_path: Path) -> None:
    doc = [
        {"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": ["A man plays.", "Someone plays."], "chCap": ["一个男人在玩。"]},
        {"videoID": "abc_000001_000011", "enCap": ["ok", 7]},
        {"videoID": "test_only_000000_000010"},
        {"enCap": ["no id"]},
        {"videoID": "x", "chCap": "not a list"},
    ]
    src = tmp_path / "vatex_validation_v1.0.json"
    src.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    media, captions, bad = run("vatex", src)
    assert [(m.media_id, m.modality, m.path, m.split) for m in media][:3] == [
        ("Ptf_2VRj-V0_000122_000132", "video", "Ptf_2VRj-V0_000122_000132.mp4", "val"),
        ("abc_000001_000011", "video", "abc_000001_000011.mp4", "val"),
        ("test_only_000000_000010", "video", "test_only_000000_000010.mp4", "val"),
    ]
    assert [(c.caption_id, c.lang, c.origin, c.parent_id, c.text) for c in captions] == [
        ("Ptf_2VRj-V0_000122_000132#en#0", "en", "human", None, "A man plays."),
        ("Ptf_2VRj-V0_000122_000132#en#1", "en", "human", None, "Someone plays."),
        ("Ptf_2VRj-V0_000122_000132#zh#0", "zh", "human", None, "一个男人在玩。"),
        ("abc_000001_000011#en#0", "en", "human", None, "ok"),
    ]
    assert [(b.source, b.row_id) for b in bad] == [
        (f"{src}:[1].enCap[1]", "abc_000001_000011#en#1"),
        (f"{src}:[3]", None),
        (f"{src}:[4].chCap", "x"),
    ]
    src.write_text(json.dumps({"videos": []}))
    with pytest.raises(CcrError, match="not a list"):
        run("vatex", src)


# grounding


def test_qvhighlights_rows_keep_windows_and_saliency(tmp_path: Path) -> None:
    rows = [
        {
            "qid": 2579,
            "query": "A girl and her mother cooked while talking with each other on facetime.",
            "duration": 150,
            "vid": "NUsG9BgSes0_210.0_360.0",
            "relevant_clip_ids": [0, 1, 2],
            "saliency_scores": [[1, 3, 3], [4, 4, 4], [2, 2, 1]],
            "relevant_windows": [[0, 6]],
        },
        {"qid": 2580, "query": "Second query.", "duration": 150, "vid": "NUsG9BgSes0_210.0_360.0", "relevant_windows": [[10, 20], [30, 40]]},
        {"qid": 9, "query": "Test query without labels.", "duration": 126.5, "vid": "vid2_0.0_126.5"},
    ]
    lines = [json.dumps(r).encode() for r in rows]
    src = write_lines(tmp_path / "highlight_val_release.jsonl", [lines[0], b'{"qid": 3, "query": "cut', lines[1], b"", lines[2]])
    media, captions, bad = run("qvhighlights", src)
    assert [(m.media_id, m.duration, m.path, m.modality, m.split) for m in media] == [
        ("NUsG9BgSes0_210.0_360.0", 150.0, "NUsG9BgSes0_210.0_360.0.mp4", "video", "val"),
        ("vid2_0.0_126.5", 126.5, "vid2_0.0_126.5.mp4", "video", "val"),
    ]
    assert [c.caption_id for c in captions] == ["2579", "2580", "9"]
    assert captions[0].extra == {
        "qid": 2579,
        "duration": 150.0,
        "relevant_windows": [[0.0, 6.0]],
        "relevant_clip_ids": [0, 1, 2],
        "saliency_scores": [[1, 3, 3], [4, 4, 4], [2, 2, 1]],
    }
    assert captions[1].extra["relevant_windows"] == [[10.0, 20.0], [30.0, 40.0]]
    assert "saliency_scores" not in captions[1].extra
    assert captions[2].extra == {"qid": 9, "duration": 126.5}
    assert [(b.source, b.reason.split(":")[0]) for b in bad] == [(f"{src}:2", "malformed JSON")]


def test_grounding_wrong_types_become_bad_records(tmp_path: Path) -> None:
    rows = [
        {"qid": "s30-d52_0", "query": "He takes out a knife.", "duration": 300.5, "vid": "s30-d52", "relevant_windows": [[10.2, 20.9]]},
        {"qid": 1, "query": "windows wrong", "duration": 10, "vid": "v", "relevant_windows": [[1, 2, 3]]},
        {"qid": 2, "query": "duration wrong", "duration": "long", "vid": "v"},
        {"qid": 3, "query": 4, "vid": "v"},
        {"qid": True, "query": "bool qid", "vid": "v"},
        [1, 2],
    ]
    src = write_lines(tmp_path / "tacos_test_release.jsonl", [json.dumps(r).encode() for r in rows])
    media, captions, bad = run("tacos", src)
    assert [(m.media_id, m.split, m.duration) for m in media] == [("s30-d52", "test", 300.5)]
    assert [(c.caption_id, c.extra["qid"]) for c in captions] == [("s30-d52_0", "s30-d52_0")]
    assert [b.source.rsplit(":", 1)[1] for b in bad] == ["2", "3", "4", "5", "6"]
    assert "relevant_windows" in bad[0].reason and "duration" in bad[1].reason and "query" in bad[2].reason
    assert "qid" in bad[3].reason and "JSON object" in bad[4].reason


def test_charades_text_format(tmp_path: Path) -> None:
    src = write_lines(
        tmp_path / "charades_sta_test.txt",
        [
            b"3MSZA 24.3 30.4##person turn a light on.",
            b"3MSZA 0.0 6.9##person opening a door.",
            b"not a charades line",
            b"AO8RW 0.0 x##bad time",
            b"AO8RW 1 5##caf\xe9",
            b"AO8RW 5.2 12##a person is putting a book on a shelf.",
        ],
    )
    media, captions, bad = run("charades", src)
    assert [(m.media_id, m.duration, m.split, m.path) for m in media] == [
        ("3MSZA", None, "test", "3MSZA.mp4"),
        ("AO8RW", None, "test", "AO8RW.mp4"),
    ]
    assert [(c.caption_id, c.media_id, c.text, c.extra["relevant_windows"]) for c in captions] == [
        ("3MSZA#1", "3MSZA", "person turn a light on.", [[24.3, 30.4]]),
        ("3MSZA#2", "3MSZA", "person opening a door.", [[0.0, 6.9]]),
        ("AO8RW#6", "AO8RW", "a person is putting a book on a shelf.", [[5.2, 12.0]]),
    ]
    assert captions[0].extra == {"qid": "3MSZA#1", "relevant_windows": [[24.3, 30.4]]}
    assert [b.source for b in bad] == [f"{src}:3", f"{src}:4", f"{src}:5"]
    assert "UTF-8" in bad[2].reason


def test_charades_jsonl_goes_through_the_grounding_reader(tmp_path: Path) -> None:
    row = {"qid": 0, "query": "a person is sitting.", "duration": 29.96, "vid": "3MSZA", "relevant_windows": [[24.3, 30.4]]}
    src = write_lines(tmp_path / "charades_train_release.jsonl", [json.dumps(row).encode()])
    media, captions, bad = run("charades", src)
    assert [(m.media_id, m.duration, m.split) for m in media] == [("3MSZA", 29.96, "train")]
    assert captions[0].caption_id == "0" and captions[0].extra["duration"] == 29.96 and bad == []


# NRCCR


def test_nrccr_tags_become_parent_chains(tmp_path: Path) -> None:
    text = tmp_path / "vatex" / "TextData"
    write_lines(text / "vatextrain.caption.txt", [b"vid1#enc#0 A man is cooking.", b"vid1#enc#1 Someone cooks."])
    write_lines(text / "vatextrain_google_enc2zh.caption.txt", ["vid1#enc2zh#0 一个男人在做饭。".encode()])
    write_lines(text / "vatextrain_google_enc2zh2enc.caption.txt", [b"vid1#enc2zh2enc#0 A man cooks."])
    write_lines(text / "vatexval_zh.caption.txt", ["vid9#zh#3 人。".encode(), b"no_tag_here text", b"vid9#zz9#0 x"])
    write_lines(text / "vatexval_google_zh2enc.caption.txt", [b"vid9#zh2enc#3 People."])
    media, captions, bad = run("nrccr", tmp_path / "vatex", modality="video")
    assert [(m.media_id, m.split, m.modality, m.path) for m in media] == [
        ("vid1", "train", "video", None),
        ("vid9", "val", "video", None),
    ]
    got = {c.caption_id: (c.lang, c.origin, c.parent_id, c.model, c.split) for c in captions}
    assert got == {
        "vid1#enc#0": ("en", "human", None, None, "train"),
        "vid1#enc#1": ("en", "human", None, None, "train"),
        "vid1#enc#0|mt:zh:google": ("zh", "mt", "vid1#enc#0", "google", "train"),
        "vid1#enc#0|mt:zh:google|bt:en:google": ("en", "bt", "vid1#enc#0|mt:zh:google", "google", "train"),
        "vid9#zh#3": ("zh", "human", None, None, "val"),
        "vid9#zh#3|mt:en:google": ("en", "mt", "vid9#zh#3", "google", "val"),
    }
    assert [b.row_id for b in bad] == ["no_tag_here", "vid9#zz9#0"]


def test_nrccr_model_key_from_file_name_or_option(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "coll_train_opus-mt_enc2de.caption.txt", [b"img.jpg#enc2de#2 Ein Bild."])
    (caption,) = run("nrccr", a)[1]
    assert caption.caption_id == "img.jpg#enc#2|mt:de:opus-mt" and caption.model == "opus-mt"
    b = write_lines(tmp_path / "colltrain_enc2de.caption.txt", [b"img.jpg#enc2de#2 Ein Bild."])
    media, (caption,), _ = run("nrccr", b, mt_model="marian")
    assert caption.caption_id == "img.jpg#enc#2|mt:de:marian" and caption.split == "train"
    assert [(m.media_id, m.path, m.modality) for m in media] == [("img", "img.jpg", "image")]


# generic tables


def test_generic_jsonl_defaults_ids_and_survives_bad_lines(tmp_path: Path) -> None:
    rows = [
        {"media_id": "m1", "text": "first", "path": "m1.jpg"},
        {"media_id": "m1", "text": "zweite", "lang": "de"},
        {"media_id": "m1", "text": "second"},
        {"media_id": 7, "caption_id": "c7", "text": "seven", "split": "val", "origin": "mt", "parent_id": "p", "model": "k"},
        {"media_id": "v", "text": "q", "qid": 5, "duration": 30, "relevant_windows": [[1, 2]], "modality": "video"},
        {"text": "no media"},
        {"media_id": "m2", "text": None},
    ]
    lines = [json.dumps(r).encode() for r in rows]
    src = write_lines(tmp_path / "mine.jsonl", [lines[0], lines[1], b"\xff\xfe broken", b"{oops", *lines[2:]])
    media, captions, bad = run("jsonl", src)
    assert [(m.media_id, m.split, m.path, m.modality, m.duration) for m in media] == [
        ("m1", None, "m1.jpg", None, None),  # split and modality not stated: open (a new media row: train, image)
        ("7", "val", None, None, None),
        ("v", None, None, "video", 30.0),
    ]
    assert [(c.caption_id, c.lang, c.text) for c in captions] == [
        ("m1#en#0", "en", "first"),
        ("m1#de#0", "de", "zweite"),
        ("m1#en#1", "en", "second"),
        ("c7", "en", "seven"),
        ("v#en#0", "en", "q"),
    ]
    assert (captions[3].origin, captions[3].parent_id, captions[3].model) == ("mt", "p", "k")
    assert captions[4].extra == {"qid": 5, "duration": 30.0, "relevant_windows": [[1.0, 2.0]]}
    assert [b.source for b in bad] == [f"{src}:3", f"{src}:4", f"{src}:8", f"{src}:9"]
    assert "UTF-8" in bad[0].reason and "malformed JSON" in bad[1].reason
    assert "media_id" in bad[2].reason and "text" in bad[3].reason


def test_generic_csv_with_column_mapping(tmp_path: Path) -> None:
    src = write_lines(
        tmp_path / "pairs_test.csv",
        [
            b"image,sentence,language,windows",
            b'a.jpg,"A dog, running.",en,"[[0, 1.5]]"',
            b"a.jpg,Ein Hund,de,",
            b"b.jpg,caf\xe9,fr,",
            b"b.jpg,too,many,fields,here",
            b"b.jpg,,en,",
        ],
    )
    cols = {"media_id": "image", "text": "sentence", "lang": "language", "relevant_windows": "windows"}
    media, captions, bad = run("csv", src, columns=cols)
    assert [(m.media_id, m.split) for m in media] == [("a.jpg", "test"), ("b.jpg", "test")]
    assert [(c.caption_id, c.text, c.lang) for c in captions] == [
        ("a.jpg#en#0", "A dog, running.", "en"),
        ("a.jpg#de#0", "Ein Hund", "de"),
        ("b.jpg#en#0", "", "en"),
    ]
    assert captions[0].extra == {"relevant_windows": [[0.0, 1.5]]}
    assert [b.source for b in bad] == [f"{src}:4", f"{src}:5"]
    assert "UTF-8" in bad[0].reason and "fields" in bad[1].reason


def test_generic_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "media_id": ["x", "x", "y"],
            "text": ["one", "two", None],
            "duration": [1.5, 1.5, None],
            "saliency_scores": [[[1.0, 2.0]], None, None],
            "qid": [1, 2, None],
        }
    )
    src = tmp_path / "rows.parquet"
    pq.write_table(table, src)
    media, captions, bad = run("parquet", src, split="val", lang="ja")
    assert [(m.media_id, m.split, m.duration) for m in media] == [("x", "val", 1.5)]
    assert [(c.caption_id, c.lang, c.split) for c in captions] == [("x#ja#0", "ja", "val"), ("x#ja#1", "ja", "val")]
    assert captions[0].extra == {"qid": 1, "duration": 1.5, "saliency_scores": [[1.0, 2.0]]}
    assert [b.source for b in bad] == [f"{src}:3"]
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(CcrError, match="not a readable Parquet file"):
        run("parquet", garbage)
