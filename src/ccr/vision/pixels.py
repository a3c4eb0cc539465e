"""One media row -> the CLIP model's input tensor, the job ``ccr features`` hands its worker processes.

Decoding and preprocessing happen together, in a worker, because together they are what the model
waits for; only the finished ``[frames, 3, H, W]`` array travels back, already in the model's
float16 where it computes in float16 (half the bytes through the pipe, and the same values the
model would have cast to). Each row is preprocessed on its own, which gives the very pixels a
batched processor call gives, so outputs do not depend on batching or worker count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccr.stages.media import Sampling, load_visual

JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class Prepared:
    """A row's model input, and what the feature store's side table records about it."""

    pixels: Any  # [frames, 3, H, W]: a numpy array, or a tensor already on the GPU (gpu_jpeg)
    duration: float | None  # a video's decoded duration in seconds; None for an image

    @property
    def is_video(self) -> bool:
        return self.duration is not None


@dataclass(frozen=True)
class Encoded:
    """A JPEG's bytes, left for the GPU to decode (``ccr.vision.gpu_jpeg``)."""

    path: Path
    data: bytes


def read_jpeg(path: Path | None) -> bytes | None:
    """The file's bytes if it is a non-empty JPEG; None for anything else, which the CPU path then reads or fails."""
    try:
        with open(path, "rb") as f:  # type: ignore[arg-type]
            data = f.read()
    except (OSError, TypeError):
        return None
    return data if data.startswith(JPEG_MAGIC) else None


@dataclass(frozen=True)
class Prepare:
    """Picklable, so a spawned worker gets it too; ``processor`` is the model's own image processor."""

    processor: Any
    sampling: Sampling
    dtype: str  # numpy dtype of the pixels handed back: float16 when the model computes in it
    keep_jpeg: bool = False  # hand JPEG images back undecoded, for the GPU

    def __call__(self, path: Path | None, modality: str) -> Prepared | Encoded:
        if self.keep_jpeg and modality == "image" and (data := read_jpeg(path)) is not None:
            return Encoded(path=path, data=data)  # type: ignore[arg-type]
        visual = load_visual(path, modality, self.sampling)
        pixels = self.processor(images=visual.frames, return_tensors="np")["pixel_values"]
        return Prepared(pixels=pixels.astype(self.dtype, copy=False), duration=visual.duration)


def wire_dtype(model_dtype: str) -> str:
    """float16 travels as float16; float32 and bfloat16 (which numpy lacks) travel as float32."""
    return "float16" if model_dtype == "float16" else "float32"
