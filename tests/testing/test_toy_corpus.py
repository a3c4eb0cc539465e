"""The toy corpus is reproducible, has the promised counts, and its captions describe its pixels.

Design: every scene is known (`toy_scenes`), so each check compares the written files with the ground
truth: the pixel at each object's centre has the object's colour (PNG is lossless), the English
captions name exactly the drawn colours and shapes, and the target-language captions name the drawn
colour and shape in their own words (the word lists below are the test's, not the module's).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ccr.testing.toy_corpus import (
    COLOURS,
    IMAGE_SIZE,
    SHAPES,
    VIDEO_FRAMES,
    english_reference,
    scene_caption,
    toy_scenes,
    translation_reference,
    write_toy_corpus,
)

CENTRES = {"left": (16, 32), "right": (48, 32), "top": (32, 16), "bottom": (32, 48)}
WORDS = {
    "de": {
        "red": "rot", "blue": "blau", "green": "grün", "yellow": "gelb", "orange": "orange",
        "purple": "violett", "white": "weiß", "black": "schwarz",
        "circle": "Kreis", "square": "Quadrat", "triangle": "Dreieck", "star": "Stern", "diamond": "Raute",
    },
    "fr": {
        "red": "rouge", "blue": "bleu", "green": "vert", "yellow": "jaune", "orange": "orange",
        "purple": "violet", "white": "blan", "black": "noir",
        "circle": "cercle", "square": "carré", "triangle": "triangle", "star": "étoile", "diamond": "losange",
    },
    "cs": {
        "red": "červen", "blue": "modr", "green": "zelen", "yellow": "žlut", "orange": "oranžov",
        "purple": "fialov", "white": "bíl", "black": "čern",
        "circle": "kruh", "square": "čtverec", "triangle": "trojúhelník", "star": "hvězd",
        "diamond": "kosočtverec",
    },
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("toy") / "corpus", videos=4)


def _rows(folder: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (folder / "captions.jsonl").read_text(encoding="utf-8").splitlines()]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(corpus: Path, tmp_path: Path) -> None:
    again = write_toy_corpus(tmp_path / "again", videos=4)
    assert _digest(again) == _digest(corpus)
    other = write_toy_corpus(tmp_path / "other", seed=1)
    assert (other / "captions.jsonl").read_bytes() != (corpus / "captions.jsonl").read_bytes()


def test_rows_have_the_schema_and_the_counts(corpus: Path) -> None:
    rows = _rows(corpus)
    assert all(list(row) == ["media_id", "path", "split", "modality", "lang", "text", "caption_id"] for row in rows)
    assert len({row["caption_id"] for row in rows}) == len(rows)
    images = Counter((r["split"], r["lang"]) for r in rows if r["modality"] == "image")
    assert images == {
        ("train", "en"): 96,
        **{(split, "en"): 24 for split in ("val", "test")},
        **{(split, lang): 12 for split in ("val", "test") for lang in ("de", "fr", "cs")},
    }
    videos = [r for r in rows if r["modality"] == "video"]
    assert len({r["media_id"] for r in videos}) == 4
    assert Counter(r["lang"] for r in videos)["en"] == 8
    assert all((corpus / r["path"]).is_file() for r in rows)


def test_english_captions_vary_per_image(corpus: Path) -> None:
    english: dict[str, list[str]] = {}
    for row in _rows(corpus):
        if row["lang"] == "en":
            english.setdefault(row["media_id"], []).append(row["text"])
    assert all(len(texts) == 2 and texts[0] != texts[1] for texts in english.values())


def test_images_decode_and_show_the_scene(corpus: Path) -> None:
    from PIL import Image

    for scene in toy_scenes(videos=4):
        if scene.modality != "image":
            continue
        with Image.open(corpus / scene.path) as image:
            assert image.mode == "RGB" and image.size == (IMAGE_SIZE, IMAGE_SIZE)
            assert image.getpixel((1, 1)) == COLOURS[scene.background]
            for obj in scene.objects:
                assert image.getpixel(CENTRES[obj.position]) == COLOURS[obj.colour]


def test_captions_name_what_is_drawn(corpus: Path) -> None:
    scenes = {scene.media_id: scene for scene in toy_scenes(videos=4)}
    for row in _rows(corpus):
        scene = scenes[row["media_id"]]
        text = row["text"]
        drawn_colours = {obj.colour for obj in scene.objects}
        drawn_shapes = {obj.shape for obj in scene.objects}
        if row["lang"] == "en":
            words = set(re.findall(r"[a-z]+", text))
            assert drawn_colours <= words
            assert words & set(COLOURS) <= drawn_colours | {scene.background}
            assert words & set(SHAPES) == drawn_shapes
            if scene.modality == "image":
                assert all(obj.position in words for obj in scene.objects)
        else:
            table = WORDS[row["lang"]]
            assert all(table[c] in text.lower() or table[c] in text for c in drawn_colours)
            assert all(table[s] in text for s in drawn_shapes)


def test_target_captions_are_written_in_the_language() -> None:
    scene = toy_scenes(n_train=0, n_val=1, n_test=0, seed=3)[0]
    texts = {lang: scene_caption(scene, lang) for lang in ("en", "de", "fr", "cs", "zh", "ja")}
    assert len(set(texts.values())) == 6
    assert texts["de"][0].isupper() and texts["de"].endswith(".")
    with pytest.raises(ValueError, match="no toy captions"):
        scene_caption(scene, "xx")


def test_videos_decode_and_move(corpus: Path) -> None:
    import av
    import numpy as np

    for scene in toy_scenes(videos=4):
        if scene.modality != "video":
            continue
        with av.open(str(corpus / scene.path)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == VIDEO_FRAMES and frames[0].shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        obj = scene.objects[0]
        colour = np.array(COLOURS[obj.colour], dtype=int)
        start_x, start_y = CENTRES[obj.position]
        end_x, end_y = CENTRES[scene.motion_to]
        assert np.abs(frames[0][start_y, start_x].astype(int) - colour).max() < 40
        assert np.abs(frames[-1][end_y, end_x].astype(int) - colour).max() < 40
        assert np.abs(frames[0][end_y, end_x].astype(int) - colour).max() >= 40


def test_colour_words_alone_retrieve_the_image_well_above_chance(corpus: Path) -> None:
    """Learnable signal in every language: matching the colours a caption names with the palette
    colours in each test image ranks the right image far above the chance mean rank (n + 1) / 2."""
    from PIL import Image

    rows = [r for r in _rows(corpus) if r["split"] == "test" and r["modality"] == "image"]
    present: dict[str, set[str]] = {}
    for row in rows:
        with Image.open(corpus / row["path"]) as image:
            pixels = {rgb for _, rgb in image.getcolors(IMAGE_SIZE * IMAGE_SIZE)}
        present[row["media_id"]] = {name for name, rgb in COLOURS.items() if rgb in pixels}
    tables = {"en": {c: c for c in COLOURS}, **{lang: WORDS[lang] for lang in ("de", "fr", "cs")}}
    for lang, table in tables.items():
        ranks = []
        for row in (r for r in rows if r["lang"] == lang):
            named = {c for c in COLOURS if table[c] in row["text"].lower()}
            scores = [len(named & colours) - len(colours - named) for colours in present.values()]
            mine = len(named & present[row["media_id"]]) - len(present[row["media_id"]] - named)
            ranks.append(1 + sum(s > mine for s in scores) + (scores.count(mine) - 1) / 2)
        assert sum(ranks) / len(ranks) < (len(present) + 1) / 4, lang


SIZE_WORDS = {"en": ("small", "large"), "de": ("klein", "groß"), "fr": ("petit", "grand"), "cs": ("mal", "velk")}
BACKGROUND_WORDS = {"en": ("background", "drawn on"), "de": ("Hintergrund",), "fr": ("fond",), "cs": ("pozadí",)}


def _says(text: str, lang: str) -> tuple[bool, bool]:
    """(names a size, names the background) in the test's own word lists."""
    return (any(w in text.lower() for w in SIZE_WORDS[lang]), any(w in text for w in BACKGROUND_WORDS[lang]))


def test_references_say_exactly_what_their_source_says() -> None:
    for scene in toy_scenes(videos=4):
        english = [scene_caption(scene, "en", v) for v in range(5)]
        for lang in ("de", "fr", "cs"):
            references = [translation_reference(scene, v, lang) for v in range(5)]
            assert all(_says(ref, lang) == _says(en, "en") for en, ref in zip(english, references))
            assert len(set(references)) == len(set(english))  # distinct sources, distinct references
            for variant in (0, 1):
                human, back = scene_caption(scene, lang, variant), english_reference(scene, lang, variant)
                assert _says(back, "en") == _says(human, lang)
                assert all(word in back.split() for word in (obj.colour for obj in scene.objects))
    with pytest.raises(ValueError, match="no reference translations"):
        translation_reference(toy_scenes()[0], 0, "zh")


def test_references_file_only_when_asked(corpus: Path, tmp_path: Path) -> None:
    written = write_toy_corpus(tmp_path / "refs", videos=4, references=True)
    assert (written / "captions.jsonl").read_bytes() == (corpus / "captions.jsonl").read_bytes()
    assert not (corpus / "references.jsonl").exists()
    scenes = {scene.media_id: scene for scene in toy_scenes(videos=4)}
    captions = {row["caption_id"]: row for row in _rows(corpus)}
    references = [json.loads(line) for line in (written / "references.jsonl").read_text("utf-8").splitlines()]
    # 152 English captions x 3 languages; 24 val/test images and 2 val/test videos per target language
    assert Counter(captions[r["caption_id"]]["lang"] for r in references) == {"en": 3 * 152, "de": 26, "fr": 26,
                                                                               "cs": 26}
    for ref in references:
        media_id, lang, _ = ref["caption_id"].split("#")
        source = captions[ref["caption_id"]]["text"]
        variants = [v for v in range(5) if scene_caption(scenes[media_id], lang, v) == source]
        expected = (translation_reference(scenes[media_id], variants[0], ref["lang"]) if lang == "en"
                    else english_reference(scenes[media_id], lang, variants[0]))
        assert ref["text"] == expected
