"""Images and videos as RGB frames, the one way every visual stage reads media.

Stages never open media files themselves, so every stage sees the same pixels: EXIF rotation
applied, any colour mode turned into 8-bit RGB (alpha composited on white, 16-bit greyscale scaled,
CMYK converted), video frames picked by one deterministic schedule. A file that cannot be read
raises ``MediaError``, whose message becomes the row's failure reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

MODES_WITH_ALPHA = ("RGBA", "LA", "PA", "La", "RGBa")


class MediaError(Exception):
    """A media file that cannot be used; the message names the file and why."""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if not path.is_file():
        raise MediaError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"file is empty: {path}")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparent pixels become white, as on a page."""
    import numpy as np
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max(initial=0.0) > 255 else 1.0  # 16-bit greyscale -> 8 bit
        image = Image.fromarray(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in MODES_WITH_ALPHA:
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(page, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(path: Path | str) -> Image.Image:
    """Decode an image fully (a truncated file fails here, not later) and return it upright in RGB."""
    from PIL import Image, ImageOps

    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return to_rgb(upright)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"unreadable image {path}: {type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class Sampling:
    """Which instants of a video to keep.

    ``frames``: N frames at the centres of N equal segments (the usual uniform test sampling).
    ``fps``: one frame every 1/fps seconds from the start, however long the video.
    ``clip_seconds``: one frame at the centre of each clip of that length (QVHighlights-style clips).
    The first that is set wins, in the order clip_seconds, fps, frames.
    """

    frames: int = 8
    fps: float | None = None
    clip_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError("frames must be at least 1")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be positive")
        if self.clip_seconds is not None and self.clip_seconds <= 0:
            raise ValueError("clip_seconds must be positive")

    def times(self, duration: float) -> list[float]:
        """Seconds from the start of the video, ascending."""
        if self.clip_seconds is not None:
            n = max(1, math.ceil(duration / self.clip_seconds - 1e-9))
            return [(k * self.clip_seconds + min((k + 1) * self.clip_seconds, duration)) / 2 for k in range(n)]
        if self.fps is not None:
            n = max(1, math.ceil(duration * self.fps - 1e-9))
            return [k / self.fps for k in range(n)]
        return [(k + 0.5) * duration / self.frames for k in range(self.frames)]


@dataclass
class Visual:
    """What a stage gets for one media row: one frame for an image, the sampled frames of a video."""

    frames: list[Image.Image]
    times: list[float]  # the sampled instants in seconds (a video's); [0.0] for an image
    duration: float | None  # seconds; None for an image

    @property
    def is_video(self) -> bool:
        return self.duration is not None


def _probe_duration(container: Any, stream: Any) -> float:
    """Duration from the stream, else the container, else the packets' own timestamps."""
    if stream.duration and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / 1_000_000
    start, end = stream.start_time or 0, 0
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, packet.pts + (packet.duration or 0) - start)
    container.seek(0)
    return float(end * stream.time_base)


def load_video(path: Path | str, sampling: Sampling | None = None) -> Visual:
    """Decode a video once, front to back, keeping the frame on screen at each sampled instant.

    Decoding in order (no seeking) makes the picked frames independent of keyframe layout, so the
    same file gives the same frames with any FFmpeg build.
    """
    import av

    path = Path(path)
    _check_file(path)
    sampling = sampling or Sampling()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"no video stream in {path}")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = _probe_duration(container, stream)
            if duration <= 0:
                raise MediaError(f"video has zero duration: {path}")
            start = float((stream.start_time or 0) * stream.time_base)
            targets = sampling.times(duration)
            frames: list[Image.Image] = []
            shown = None  # the last decoded frame at or before the next target
            for frame in container.decode(stream):
                t = (frame.time or 0.0) - start
                while shown is not None and len(frames) < len(targets) and t > targets[len(frames)]:
                    frames.append(shown.to_image())
                if len(frames) == len(targets):
                    break
                shown = frame
            if shown is None:
                raise MediaError(f"no decodable frames in {path}")
            while len(frames) < len(targets):
                frames.append(shown.to_image())
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise MediaError(f"unreadable video {path}: {type(e).__name__}: {e}") from None
    return Visual(frames=[to_rgb(f) for f in frames], times=targets, duration=duration)


def load_visual(path: Path | None, modality: str, sampling: Sampling | None = None) -> Visual:
    """A media row's pixels: ``modality`` is the media table's image | video."""
    if path is None:
        raise MediaError("media row has no path")
    if modality == "video":
        return load_video(path, sampling)
    if modality == "image":
        return Visual(frames=[load_image(path)], times=[0.0], duration=None)
    raise MediaError(f"unknown modality {modality!r}: expected image or video")
