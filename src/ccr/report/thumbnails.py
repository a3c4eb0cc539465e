"""Small JPEG thumbnails of media items: one picture for an image, a strip of frames for a video.

A thumbnail's file name hashes the media id, the file it came from, its size and modification
time, so a report built again reuses every thumbnail whose source has not changed and remakes
the rest. A file that cannot be read gives no thumbnail and a reason; it never stops the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

THUMB_DIR = "thumbs"
HEIGHT = 72  # pixels; images are never enlarged
MAX_WIDTH = 128  # an image wider than this is scaled down to it
STRIP_FRAMES = 4  # frames in a video's strip
JPEG_QUALITY = 82
WORKERS = 2  # decoding and encoding release the GIL, so threads overlap on two cores


@dataclass(frozen=True)
class MediaItem:
    media_id: str
    modality: str | None
    path: Path | None  # resolved on this machine; None when the corpus has no media row or path


@dataclass(frozen=True)
class Thumb:
    media_id: str
    file: str | None  # relative to the report directory
    problem: str | None  # why there is no thumbnail


def _fit(image: Image.Image, max_width: int) -> Image.Image:
    from PIL import Image

    copy = image.copy()
    copy.thumbnail((max_width, HEIGHT), Image.Resampling.LANCZOS)
    return copy


def render(item: MediaItem) -> Image.Image:
    """The thumbnail picture; raises ``MediaError`` when the file cannot be used."""
    from PIL import Image

    from ccr.stages.media import Sampling, load_visual

    is_video = item.modality == "video"
    visual = load_visual(item.path, item.modality or "image", Sampling(frames=STRIP_FRAMES) if is_video else None)
    frames = [_fit(f, MAX_WIDTH // 2 if is_video else MAX_WIDTH) for f in visual.frames]
    width = sum(f.width for f in frames) + (len(frames) - 1)
    height = max(f.height for f in frames)
    strip = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for f in frames:
        strip.paste(f, (x, 0))
        x += f.width + 1
    return strip


def _name(item: MediaItem) -> str | None:
    assert item.path is not None
    try:
        st = item.path.stat()
    except OSError:
        return None
    key = f"{item.media_id}\0{item.path}\0{st.st_size}\0{st.st_mtime_ns}\0{HEIGHT}\0{MAX_WIDTH}\0{STRIP_FRAMES}"
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20] + ".jpg"


def make_one(item: MediaItem, out_dir: Path) -> Thumb:
    """A thumbnail from the cache or freshly made, or the reason there is none."""
    from ccr.stages.media import MediaError

    if item.modality is None:
        return Thumb(item.media_id, None, "no media row for this media_id")
    if item.path is None:
        return Thumb(item.media_id, None, "media row has no path")
    name = _name(item)
    if name is None:
        return Thumb(item.media_id, None, f"file not found: {item.path}")
    target = out_dir / THUMB_DIR / name
    if not target.exists():
        try:
            picture = render(item)
        except MediaError as e:
            return Thumb(item.media_id, None, str(e))
        tmp = target.with_suffix(".tmp")
        picture.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        tmp.replace(target)
    return Thumb(item.media_id, f"{THUMB_DIR}/{name}", None)


def make_thumbnails(items: Iterable[MediaItem], out_dir: Path) -> list[Thumb]:
    (out_dir / THUMB_DIR).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda item: make_one(item, out_dir), items))
