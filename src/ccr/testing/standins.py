"""Small synthetic stand-ins for the public files each recipe in ``configs/`` reads.

Same file names, formats and folder layout as the real downloads (Multi30K's gzipped text and
image lists, the Karpathy COCO split, NRCCR ``TextData`` caption files, BigFile and per-video npz
features, QVHighlights jsonl), at a few dozen items, so CI runs every recipe unchanged and a
recipe whose paths or formats drift from what ``ccr ingest`` reads fails a test instead of a user.
Captions come from the toy corpus's scenes, so text and pixels agree.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ccr.testing.toy_corpus import ToyScene, render_scene, scene_caption, toy_scenes

SIZES = {"n_train": 16, "n_val": 6, "n_test": 6}
VIDEO_CLIPS = 6  # frames or 2 s clips per stand-in video
FEATURE_DIM = 32


def _scenes(seed: int) -> list[ToyScene]:
    return toy_scenes(**SIZES, seed=seed)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _save_jpeg(scene: ToyScene, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    render_scene(scene).convert("RGB").save(path, format="JPEG", quality=90)


def write_multi30k(root: Path) -> None:
    """``multi30k/data/task1/{raw,image_splits}`` (github.com/multi30k/dataset) and ``flickr30k-images/``."""
    task1 = root / "multi30k" / "data" / "task1"
    names = {"train": "train", "val": "val", "test": "test_2016_flickr"}
    for split, name in names.items():
        scenes = [s for s in _scenes(seed=30) if s.split == split]
        _write(task1 / "image_splits" / f"{name}.txt", "".join(f"{s.media_id}.jpg\n" for s in scenes))
        for lang in ("en", "de", "fr", "cs"):
            text = "".join(scene_caption(s, lang) + "\n" for s in scenes)
            (task1 / "raw").mkdir(parents=True, exist_ok=True)
            with gzip.open(task1 / "raw" / f"{name}.{lang}.gz", "wt", encoding="utf-8") as fh:
                fh.write(text)
        for scene in scenes:
            _save_jpeg(scene, root / "flickr30k-images" / f"{scene.media_id}.jpg")


def _coco_id(scene: ToyScene) -> int:
    return 100000 + int(scene.media_id[1:])


def write_mscoco(root: Path) -> None:
    """``coco/dataset_coco.json`` (Karpathy split), ``coco/images/val2014/``, ja/zh NRCCR caption files."""
    coco = root / "coco"
    images = []
    for scene in _scenes(seed=31):
        cocoid = _coco_id(scene)
        filename = f"COCO_val2014_{cocoid:012d}.jpg"
        sentences = [{"raw": scene_caption(scene, "en", k), "sentid": cocoid * 10 + k} for k in range(2)]
        images.append({"filepath": "val2014", "filename": filename, "cocoid": cocoid,
                       "split": "restval" if scene.split == "train" and cocoid % 2 else scene.split,
                       "sentences": sentences})
        _save_jpeg(scene, coco / "images" / "val2014" / filename)
    _write(coco / "dataset_coco.json", json.dumps({"images": images, "dataset": "coco"}))
    files = {("val", "ja"): "mscocoval_ja", ("test", "ja"): "mscocotest_1k_ja",
             ("val", "zh"): "mscocoval_zh", ("test", "zh"): "mscocotest_zh"}
    for (split, lang), name in files.items():
        scenes = [s for s in _scenes(seed=31) if s.split == split]
        _write(coco / "TextData" / f"{name}.caption.txt",
               "".join(f"{_coco_id(s)}#{lang}#0 {scene_caption(s, lang)}\n" for s in scenes))


def _video_features(scenes: list[ToyScene], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s.media_id: rng.standard_normal((VIDEO_CLIPS, FEATURE_DIM)).astype(np.float32) for s in scenes}


def _nrccr_video_collection(root: Path, collection: str, feature: str, seed: int) -> None:
    """NRCCR's video layout: ``TextData/{coll}train.caption.txt``, ``{coll}{val,test}_zh.caption.txt``,
    and a frame-level BigFile ``FeatureData/FEATURE`` with ``video2frames.txt``."""
    from ccr.formats.bigfile import write_bigfile, write_video2frames

    base = root / collection
    scenes = [ToyScene(f"video{s.media_id[1:]}", s.split, "video", s.background, s.objects) for s in _scenes(seed)]
    train = [s for s in scenes if s.split == "train"]
    _write(base / "TextData" / f"{collection}train.caption.txt",
           "".join(f"{s.media_id}#enc#{k} {scene_caption(s, 'en', k)}\n" for s in train for k in range(2)))
    for split in ("val", "test"):
        _write(base / "TextData" / f"{collection}{split}_zh.caption.txt",
               "".join(f"{s.media_id}#zh#{k} {scene_caption(s, 'zh', k)}\n"
                       for s in scenes if s.split == split for k in range(2)))
    features = _video_features(scenes, seed)
    frames = {vid: [f"{vid}_{t}" for t in range(VIDEO_CLIPS)] for vid in features}
    ids = [f for vid in features for f in frames[vid]]
    write_bigfile(base / "FeatureData" / feature, ids, np.concatenate(list(features.values())))
    write_video2frames(base / "FeatureData" / feature / "video2frames.txt", frames)


def write_vatex(root: Path) -> None:
    """``vatex/TextData`` caption files and the ``i3d_kinetics`` BigFile of NRCCR's VATEX release."""
    _nrccr_video_collection(root, "vatex", "i3d_kinetics", seed=32)


def write_msrvtt_cn(root: Path) -> None:
    """``msrvtt10kcn/TextData`` caption files and the ``resnext101-resnet152`` BigFile of NRCCR's release."""
    _nrccr_video_collection(root, "msrvtt10kcn", "resnext101-resnet152", seed=33)


def write_qvhighlights(root: Path) -> None:
    """``qvhighlights/highlight_{train,val}_release.jsonl``, ``highlight_test_with_gt.jsonl`` and
    ``features/clip_features/{vid}.npz`` (moment_detr's layout: 2 s clips, key ``features``)."""
    base = root / "qvhighlights"
    scenes = _scenes(seed=34)
    names = {"train": "highlight_train_release", "val": "highlight_val_release", "test": "highlight_test_with_gt"}
    duration = 2.0 * VIDEO_CLIPS
    for split, name in names.items():
        lines = []
        for n, scene in enumerate(s for s in scenes if s.split == split):
            vid = f"yt{scene.media_id}_0.0_{duration:.1f}"
            start = n % (VIDEO_CLIPS - 2)
            window = [2.0 * start, 2.0 * (start + 2)]
            lines.append(json.dumps({"qid": _coco_id(scene), "query": scene_caption(scene, "en"), "duration": duration,
                                     "vid": vid, "relevant_windows": [window],
                                     "relevant_clip_ids": [start, start + 1],
                                     "saliency_scores": [[2, 3, 4], [1, 2, 3]]}))
        _write(base / f"{name}.jsonl", "\n".join(lines) + "\n")
    features = _video_features(scenes, seed=34)
    (base / "features" / "clip_features").mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        vid = f"yt{scene.media_id}_0.0_{duration:.1f}"
        np.savez(base / "features" / "clip_features" / f"{vid}.npz", features=features[scene.media_id])


WRITERS: dict[str, Callable[[Path], None]] = {
    "multi30k": write_multi30k,
    "mscoco": write_mscoco,
    "vatex": write_vatex,
    "msrvtt-cn": write_msrvtt_cn,
    "qvhighlights": write_qvhighlights,
}


def write_standins(root: Path | str, recipe: str) -> Path:
    """Write the stand-in files recipe ``configs/RECIPE.toml`` reads under data root ``root``."""
    root = Path(root)
    WRITERS[recipe](root)
    return root
