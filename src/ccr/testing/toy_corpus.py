"""A small toy caption corpus, rendered on the spot from scene descriptions.

Each image is drawn from a scene (coloured shapes at positions on a background) and every caption
is written from the same scene, so colours, shapes and positions in the text match the pixels: a
retrieval model trained on it can beat chance, and tests can check captions against the ground
truth that `toy_scenes` returns. Target-language captions come from hand-written word tables
with the little grammar each language needs (gender, case), so they read like human captions
rather than machine translations of the English ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "blue": (30, 70, 220),
    "green": (30, 160, 60),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (140, 50, 170),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
POSITIONS = ("left", "right", "top", "bottom")
SIZES = ("small", "large")
MOTIONS = (("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top"))
TARGET_LANGS = ("de", "fr", "cs")
CAPTION_LANGS = ("en", "de", "fr", "cs", "zh", "ja")

IMAGE_SIZE = 64
VIDEO_FRAMES = 16
VIDEO_FPS = 8
_CENTRES = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75)}
_RADIUS = {"small": 0.11, "large": 0.19}


@dataclass(frozen=True)
class ToyObject:
    shape: str
    colour: str
    position: str  # for a video: where the motion starts
    size: str


@dataclass(frozen=True)
class ToyScene:
    media_id: str
    split: str
    modality: str  # image | video
    background: str
    objects: tuple[ToyObject, ...]
    motion_to: str | None = None  # videos: where the single object ends up

    @property
    def path(self) -> str:
        folder, ext = ("videos", "mp4") if self.modality == "video" else ("images", "png")
        return f"{folder}/{self.media_id}.{ext}"


def _splits(n_train: int, n_val: int, n_test: int) -> list[str]:
    return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


def _video_splits(videos: int, n_train: int, n_val: int, n_test: int) -> list[str]:
    """Videos follow the image split proportions so every split gets some once there are a few."""
    total = max(1, n_train + n_val + n_test)
    n_v = round(videos * n_val / total)
    n_t = round(videos * n_test / total)
    return ["train"] * (videos - n_v - n_t) + ["val"] * n_v + ["test"] * n_t


def toy_scenes(
    *, n_train: int = 48, n_val: int = 12, n_test: int = 12, seed: int = 0, videos: int = 0
) -> list[ToyScene]:
    """The ground truth behind `write_toy_corpus` (same arguments, same scenes)."""
    rng = random.Random(seed)
    scenes: list[ToyScene] = []
    for i, split in enumerate(_splits(n_train, n_val, n_test)):
        n_obj = rng.choice((1, 2))
        colours = rng.sample(sorted(COLOURS), n_obj + 1)
        positions = rng.sample(POSITIONS, n_obj)
        objects = tuple(
            ToyObject(rng.choice(SHAPES), colours[k + 1], positions[k], rng.choice(SIZES)) for k in range(n_obj)
        )
        scenes.append(ToyScene(f"m{i:04d}", split, "image", colours[0], objects))
    for i, split in enumerate(_video_splits(videos, n_train, n_val, n_test)):
        background, colour = rng.sample(sorted(COLOURS), 2)
        start, end = rng.choice(MOTIONS)
        obj = ToyObject(rng.choice(SHAPES), colour, start, rng.choice(SIZES))
        scenes.append(ToyScene(f"v{i:04d}", split, "video", background, (obj,), end))
    return scenes


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    import math

    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.75), (cx - r * 0.95, cy + r * 0.75)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.45
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def render_scene(scene: ToyScene, *, t: float = 0.0, size: int = IMAGE_SIZE) -> Image.Image:
    """One image, or with `t` in [0, 1] one video frame: videos are the same scene with the object in motion."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), COLOURS[scene.background])
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        fx, fy = _CENTRES[obj.position]
        if scene.motion_to is not None:
            tx, ty = _CENTRES[scene.motion_to]
            fx, fy = fx + (tx - fx) * t, fy + (ty - fy) * t
        cx, cy, r = fx * size, fy * size, _RADIUS[obj.size] * size
        fill = COLOURS[obj.colour]
        if obj.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif obj.shape == "square":
            h = r * 0.85
            draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
        else:
            draw.polygon(_shape_points(obj.shape, cx, cy, r), fill=fill)
    return img


# --- English ---------------------------------------------------------------------------------

_EN_ON = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
_EN_AT = {"left": "at the left", "right": "at the right", "top": "near the top", "bottom": "near the bottom"}
# (pattern, position phrases, mention size)
_EN_TEMPLATES = (
    ("{objs} of {a_bg} background", _EN_ON, True),
    ("there is {objs}", _EN_AT, True),
    ("{bg} background with {objs}", _EN_ON, False),
    ("the picture shows {objs}, drawn on {bg}", _EN_AT, True),
    ("a simple drawing: {objs} against {a_bg} background", _EN_ON, False),
)
_EN_FROM_TO = {"left": "left", "right": "right", "top": "the top", "bottom": "the bottom"}
_EN_TOWARDS = {"left": "to the left", "right": "to the right", "top": "upwards", "bottom": "downwards"}


def _en_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _en_moves(scene: ToyScene, *, with_size: bool, background: bool) -> str:
    """The "moves from ... to ..." video caption; references also need it without size or with the background."""
    obj, end = scene.objects[0], str(scene.motion_to)
    noun = _en_article(f"{obj.size} {obj.colour} {obj.shape}" if with_size else f"{obj.colour} {obj.shape}")
    text = f"{noun} moves from {_EN_FROM_TO[obj.position]} to {_EN_FROM_TO[end]}"
    return f"{text} across {_en_article(scene.background)} background" if background else text


def _caption_en(scene: ToyScene, variant: int) -> str:
    if scene.motion_to is not None:
        obj = scene.objects[0]
        if variant % 2 == 0:
            return _en_moves(scene, with_size=True, background=False)
        noun = _en_article(f"{obj.colour} {obj.shape}")
        return f"{noun} slides {_EN_TOWARDS[scene.motion_to]} across {_en_article(scene.background)} background"
    pattern, places, with_size = _EN_TEMPLATES[variant % len(_EN_TEMPLATES)]
    phrases = []
    for obj in scene.objects:
        words = f"{obj.size} {obj.colour} {obj.shape}" if with_size else f"{obj.colour} {obj.shape}"
        phrases.append(f"{_en_article(words)} {places[obj.position]}")
    return pattern.format(objs=" and ".join(phrases), bg=scene.background, a_bg=_en_article(scene.background))


@dataclass(frozen=True)
class _Say:
    """Which facts a target-language caption states. Human captions state what their template does;
    a reference translation states exactly what its English source does (`translation_reference`)."""

    size: bool
    background: bool = True  # images: the background colour
    start: bool = True  # videos: where the motion starts ("von links nach rechts" or only "nach rechts")


def _human(scene: ToyScene, variant: int) -> _Say:
    """The human captions: sizes for one object, and in the second video template."""
    if scene.motion_to is not None:
        return _Say(size=variant % 2 == 1)
    return _Say(size=len(scene.objects) == 1)


# --- German ----------------------------------------------------------------------------------

_DE_NOUN = {
    "circle": ("Kreis", "m"),
    "square": ("Quadrat", "n"),
    "triangle": ("Dreieck", "n"),
    "star": ("Stern", "m"),
    "diamond": ("Raute", "f"),
}
_DE_ADJ = {
    "red": "rot", "blue": "blau", "green": "grün", "yellow": "gelb", "orange": "orangefarben",
    "purple": "violett", "white": "weiß", "black": "schwarz", "small": "klein", "large": "groß",
}
_DE_POS = {"left": "links", "right": "rechts", "top": "oben", "bottom": "unten"}
# gender -> (article, adjective ending) after the indefinite article
_DE_NOM = {"m": ("ein", "er"), "n": ("ein", "es"), "f": ("eine", "e")}
_DE_ACC = {"m": ("einen", "en"), "n": ("ein", "es"), "f": ("eine", "e")}


def _de_noun_phrase(obj: ToyObject, case: dict[str, tuple[str, str]], with_size: bool) -> str:
    noun, gender = _DE_NOUN[obj.shape]
    article, ending = case[gender]
    words = [obj.size, obj.colour] if with_size else [obj.colour]
    return " ".join([article, *(_DE_ADJ[w] + ending for w in words), noun])


def _caption_de(scene: ToyScene, variant: int, say: _Say) -> str:
    background = f"auf {_DE_ADJ[scene.background]}em Hintergrund"
    if scene.motion_to is not None:
        obj = scene.objects[0]
        motion = f"nach {_DE_POS[scene.motion_to]}"
        motion = f"von {_DE_POS[obj.position]} {motion}" if say.start else motion
        if variant % 2 == 0:
            return f"{_upper_first(_de_noun_phrase(obj, _DE_NOM, say.size))} bewegt sich {motion}."
        return f"{_upper_first(background)} wandert {_de_noun_phrase(obj, _DE_NOM, say.size)} {motion}."
    if variant % 2 == 0:
        parts = [f"{_de_noun_phrase(o, _DE_NOM, say.size)} {_DE_POS[o.position]}" for o in scene.objects]
        text = " und ".join(parts) + (f" {background}." if say.background else ".")
    else:
        parts = [f"{_DE_POS[o.position]} {_de_noun_phrase(o, _DE_ACC, say.size)}" for o in scene.objects]
        text = (f"{background} sieht man " if say.background else "man sieht ") + " und ".join(parts) + "."
    return _upper_first(text)


# --- French ----------------------------------------------------------------------------------

_FR_NOUN = {
    "circle": ("cercle", "m"),
    "square": ("carré", "m"),
    "triangle": ("triangle", "m"),
    "star": ("étoile", "f"),
    "diamond": ("losange", "m"),
}
# colour -> (masculine, feminine); sizes go before the noun, colours after it
_FR_ADJ = {
    "red": ("rouge", "rouge"), "blue": ("bleu", "bleue"), "green": ("vert", "verte"),
    "yellow": ("jaune", "jaune"), "orange": ("orange", "orange"), "purple": ("violet", "violette"),
    "white": ("blanc", "blanche"), "black": ("noir", "noire"), "small": ("petit", "petite"),
    "large": ("grand", "grande"),
}
_FR_POS = {"left": "à gauche", "right": "à droite", "top": "en haut", "bottom": "en bas"}
_FR_MOTION = {
    ("left", "right"): "de gauche à droite",
    ("right", "left"): "de droite à gauche",
    ("top", "bottom"): "de haut en bas",
    ("bottom", "top"): "de bas en haut",
}


_FR_TOWARDS = {"left": "vers la gauche", "right": "vers la droite", "top": "vers le haut", "bottom": "vers le bas"}


def _fr_noun_phrase(obj: ToyObject, with_size: bool) -> str:
    noun, gender = _FR_NOUN[obj.shape]
    g = 0 if gender == "m" else 1
    article = "un" if gender == "m" else "une"
    size = f"{_FR_ADJ[obj.size][g]} " if with_size else ""
    return f"{article} {size}{noun} {_FR_ADJ[obj.colour][g]}"


def _caption_fr(scene: ToyScene, variant: int, say: _Say) -> str:
    background = _FR_ADJ[scene.background][0]
    if scene.motion_to is not None:
        obj = scene.objects[0]
        motion = _FR_MOTION[(obj.position, scene.motion_to)] if say.start else _FR_TOWARDS[scene.motion_to]
        if variant % 2 == 0:
            return f"{_upper_first(_fr_noun_phrase(obj, say.size))} se déplace {motion}."
        return f"Sur un fond {background}, {_fr_noun_phrase(obj, say.size)} glisse {motion}."
    parts = " et ".join(f"{_fr_noun_phrase(o, say.size)} {_FR_POS[o.position]}" for o in scene.objects)
    if variant % 2 == 0:
        return f"{_upper_first(parts)} sur un fond {background}." if say.background else f"{_upper_first(parts)}."
    return f"On voit {parts}, sur fond {background}." if say.background else f"On voit {parts}."


# --- Czech -----------------------------------------------------------------------------------

_CS_NOUN = {
    "circle": ("kruh", "m"),
    "square": ("čtverec", "m"),
    "triangle": ("trojúhelník", "m"),
    "star": ("hvězda", "f"),
    "diamond": ("kosočtverec", "m"),
}
# hard adjective stems: nominative -ý (m) / -á (f), locative -ém ("na modrém pozadí")
_CS_STEM = {
    "red": "červen", "blue": "modr", "green": "zelen", "yellow": "žlut", "orange": "oranžov",
    "purple": "fialov", "white": "bíl", "black": "čern", "small": "mal", "large": "velk",
}
_CS_POS = {"left": "vlevo", "right": "vpravo", "top": "nahoře", "bottom": "dole"}
_CS_MOTION = {
    ("left", "right"): "zleva doprava",
    ("right", "left"): "zprava doleva",
    ("top", "bottom"): "shora dolů",
    ("bottom", "top"): "zdola nahoru",
}


_CS_TOWARDS = {"left": "doleva", "right": "doprava", "top": "nahoru", "bottom": "dolů"}


def _cs_noun_phrase(obj: ToyObject, with_size: bool) -> str:
    noun, gender = _CS_NOUN[obj.shape]
    ending = "ý" if gender == "m" else "á"
    words = [obj.size, obj.colour] if with_size else [obj.colour]
    return " ".join([*(_CS_STEM[w] + ending for w in words), noun])


def _caption_cs(scene: ToyScene, variant: int, say: _Say) -> str:
    background = f"na {_CS_STEM[scene.background]}ém pozadí"
    if scene.motion_to is not None:
        obj = scene.objects[0]
        motion = _CS_MOTION[(obj.position, scene.motion_to)] if say.start else _CS_TOWARDS[scene.motion_to]
        if variant % 2 == 0:
            return f"{_upper_first(_cs_noun_phrase(obj, say.size))} se pohybuje {motion}."
        return f"{_upper_first(background)} se {_cs_noun_phrase(obj, say.size)} posouvá {motion}."
    if variant % 2 == 0:
        parts = " a ".join(f"{_cs_noun_phrase(o, say.size)} {_CS_POS[o.position]}" for o in scene.objects)
        return f"{_upper_first(parts)} {background}." if say.background else f"{_upper_first(parts)}."
    parts = " a ".join(f"{_CS_POS[o.position]} {_cs_noun_phrase(o, say.size)}" for o in scene.objects)
    return f"{_upper_first(background)} je {parts}." if say.background else f"Je tam {parts}."


# --- Chinese and Japanese (tokenizer text for the tiny models; not written by default) --------

_ZH_COLOUR = {
    "red": "红色", "blue": "蓝色", "green": "绿色", "yellow": "黄色", "orange": "橙色",
    "purple": "紫色", "white": "白色", "black": "黑色",
}
_ZH_SHAPE = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形", "diamond": "菱形"}
_ZH_SIZE = {"small": "小", "large": "大"}
_ZH_POS = {"left": "左边", "right": "右边", "top": "上方", "bottom": "下方"}


def _caption_zh(scene: ToyScene, variant: int) -> str:
    if scene.motion_to is not None:
        obj = scene.objects[0]
        motion = f"从{_ZH_POS[obj.position]}移动到{_ZH_POS[scene.motion_to]}"
        if variant % 2 == 0:
            return f"一个{_ZH_COLOUR[obj.colour]}的{_ZH_SHAPE[obj.shape]}{motion}。"
        return f"在{_ZH_COLOUR[scene.background]}背景上，{_ZH_SIZE[obj.size]}{_ZH_SHAPE[obj.shape]}{motion}。"
    if variant % 2 == 0:
        parts = "，".join(
            f"{_ZH_POS[o.position]}有一个{_ZH_COLOUR[o.colour]}的{_ZH_SIZE[o.size]}{_ZH_SHAPE[o.shape]}"
            for o in scene.objects
        )
        return f"{_ZH_COLOUR[scene.background]}背景上，{parts}。"
    parts = "，".join(
        f"{_ZH_POS[o.position]}是一个{_ZH_COLOUR[o.colour]}{_ZH_SHAPE[o.shape]}" for o in scene.objects
    )
    return f"图片{parts}，背景是{_ZH_COLOUR[scene.background]}。"


_JA_COLOUR = {
    "red": "赤い", "blue": "青い", "green": "緑の", "yellow": "黄色い", "orange": "オレンジ色の",
    "purple": "紫の", "white": "白い", "black": "黒い",
}
_JA_BACKGROUND = {
    "red": "赤色", "blue": "青色", "green": "緑色", "yellow": "黄色", "orange": "オレンジ色",
    "purple": "紫色", "white": "白色", "black": "黒色",
}
_JA_SHAPE = {"circle": "丸", "square": "四角", "triangle": "三角", "star": "星", "diamond": "ひし形"}
_JA_SIZE = {"small": "小さな", "large": "大きな"}
_JA_POS = {"left": "左", "right": "右", "top": "上", "bottom": "下"}


def _caption_ja(scene: ToyScene, variant: int) -> str:
    if scene.motion_to is not None:
        obj = scene.objects[0]
        motion = f"{_JA_POS[obj.position]}から{_JA_POS[scene.motion_to]}へ"
        if variant % 2 == 0:
            return f"{_JA_COLOUR[obj.colour]}{_JA_SHAPE[obj.shape]}が{motion}動く。"
        background = _JA_BACKGROUND[scene.background]
        return f"{background}の背景で{_JA_SIZE[obj.size]}{_JA_SHAPE[obj.shape]}が{motion}移動する。"
    parts = "、".join(
        f"{_JA_POS[o.position]}に{_JA_SIZE[o.size]}{_JA_COLOUR[o.colour]}{_JA_SHAPE[o.shape]}" for o in scene.objects
    )
    if variant % 2 == 0:
        return f"{_JA_BACKGROUND[scene.background]}の背景の{parts}があります。"
    return f"{parts}が描かれた{_JA_BACKGROUND[scene.background]}の背景の絵。"


_CAPTIONERS = {"en": _caption_en, "zh": _caption_zh, "ja": _caption_ja}
_TARGET_CAPTIONERS = {"de": _caption_de, "fr": _caption_fr, "cs": _caption_cs}


def scene_caption(scene: ToyScene, lang: str, variant: int = 0) -> str:
    """One caption of the scene; different variants word the same content differently."""
    if lang in _TARGET_CAPTIONERS:
        return _TARGET_CAPTIONERS[lang](scene, variant, _human(scene, variant))
    if lang not in _CAPTIONERS:
        raise ValueError(f"no toy captions for language {lang!r}; choose from {', '.join(CAPTION_LANGS)}")
    return _CAPTIONERS[lang](scene, variant)


# --- reference translations ------------------------------------------------------------------
# An English template may leave out sizes or the background, and a human target caption may state
# facts no English template pairs the same way, so "the scene's German caption" is no translation of
# a given English caption. A reference says exactly what its source says; the target template
# follows the source's, one to one within a scene, so distinct sources keep distinct references.

# English image template -> target template: v0 and v3 (sizes) and v2 and v4 (none) go to different ones
_TARGET_VARIANT = (0, 1, 1, 1, 0)
# (target template, sizes said) -> the English image template saying the same (target images name the background)
_ENGLISH_VARIANT = {(0, True): 0, (1, True): 3, (1, False): 2, (0, False): 4}


def _target_langs_only(lang: str) -> None:
    if lang not in _TARGET_CAPTIONERS:
        raise ValueError(f"no reference translations for language {lang!r}; choose from {', '.join(TARGET_LANGS)}")


def translation_reference(scene: ToyScene, en_variant: int, lang: str) -> str:
    """The `lang` caption saying exactly what `scene_caption(scene, "en", en_variant)` says: the gold
    translation the toy Marian models learn and the demo measures MT against."""
    _target_langs_only(lang)
    if scene.motion_to is not None:  # "a large red circle moves from left to right" / "a red circle slides to the right"
        variant, say = en_variant % 2, _Say(size=en_variant % 2 == 0, start=en_variant % 2 == 0)
    else:
        template, _, with_size = _EN_TEMPLATES[en_variant % len(_EN_TEMPLATES)]
        background = "bg}" in template  # {bg} or {a_bg}
        variant, say = _TARGET_VARIANT[en_variant % len(_EN_TEMPLATES)], _Say(with_size, background)
    return _TARGET_CAPTIONERS[lang](scene, variant, say)


def english_reference(scene: ToyScene, lang: str, variant: int) -> str:
    """The English caption saying exactly what `scene_caption(scene, lang, variant)` says: what
    back-translating that human caption should give."""
    _target_langs_only(lang)
    say = _human(scene, variant)
    if scene.motion_to is not None:  # both target video templates name the start; only the second the background
        return _en_moves(scene, with_size=say.size, background=variant % 2 == 1)
    return _caption_en(scene, _ENGLISH_VARIANT[(variant % 2, say.size)])


def _write_video(scene: ToyScene, path: Path) -> None:
    """H.264 with bit-exact muxing, so the same scene gives the same bytes on every run."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS)
        stream.width = stream.height = IMAGE_SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "threads": "1", "flags": "+bitexact"}
        for k in range(VIDEO_FRAMES):
            image = render_scene(scene, t=k / (VIDEO_FRAMES - 1))
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_toy_corpus(
    out_dir: Path,
    *,
    n_train: int = 48,
    n_val: int = 12,
    n_test: int = 12,
    seed: int = 0,
    videos: int = 0,
    target_langs: Sequence[str] = TARGET_LANGS,
    references: bool = False,
) -> Path:
    """Write media and captions.jsonl in the shape of the field's corpora.

    English captions (two per item) cover every split because training uses them; human target-language
    captions exist only on val and test, as in Multi30K or MSCOCO-CN, since CCR trains without them.
    With `references`, also references.jsonl: for every English caption and target language the
    reference translation, and for every target-language caption its English reference (rows
    `caption_id`, `lang` (of the reference), `text`), so MT and back-translation can be scored.
    """
    out_dir = Path(out_dir)
    scenes = toy_scenes(n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, videos=videos)
    variant_rng = random.Random(f"captions-{seed}")
    rows: list[dict[str, str]] = []
    gold: list[dict[str, str]] = []
    for scene in scenes:
        target = out_dir / scene.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if scene.modality == "video":
            _write_video(scene, target)
            en_variants = [0, 1]
        else:
            render_scene(scene).save(target, format="PNG", optimize=False)
            en_variants = variant_rng.sample(range(len(_EN_TEMPLATES)), 2)
        captions = [("en", k, v) for k, v in enumerate(en_variants)]
        if scene.split != "train":
            captions += [(lang, 0, variant_rng.randrange(2)) for lang in target_langs]
        for lang, k, variant in captions:
            rows.append({
                "media_id": scene.media_id,
                "path": scene.path,
                "split": scene.split,
                "modality": scene.modality,
                "lang": lang,
                "text": scene_caption(scene, lang, variant),
                "caption_id": f"{scene.media_id}#{lang}#{k}",
            })
            gold += _references(scene, lang, variant, f"{scene.media_id}#{lang}#{k}", target_langs)
    _write_jsonl(out_dir / "captions.jsonl", rows)
    if references:
        _write_jsonl(out_dir / "references.jsonl", gold)
    return out_dir


def _references(scene: ToyScene, lang: str, variant: int, caption_id: str,
                target_langs: Sequence[str]) -> list[dict[str, str]]:
    """references.jsonl's rows for one caption (none for zh and ja, which have no references)."""
    if lang == "en":
        return [{"caption_id": caption_id, "lang": target, "text": translation_reference(scene, variant, target)}
                for target in target_langs if target in TARGET_LANGS]
    if lang in TARGET_LANGS:
        return [{"caption_id": caption_id, "lang": "en", "text": english_reference(scene, lang, variant)}]
    return []


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
