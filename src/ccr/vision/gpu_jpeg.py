"""JPEG decoding and CLIP preprocessing on the GPU, where the installed stack has torchvision.

With ``--decode gpu`` (or ``auto`` on a CUDA device with torchvision importable) the worker
processes only read a JPEG's bytes; nvJPEG decodes the whole batch on the GPU
(``torchvision.io.decode_jpeg``, EXIF orientation applied, any colour mode as RGB) and the model's
image processor, in its torchvision backend, resizes, crops and normalises there. The pixels differ
slightly from PIL's (another IDCT and resize), so the decoder is part of the stage's fingerprint.
Files nvJPEG refuses (CMYK, damaged) go through the CPU job, whose failure reason a broken file
then gets exactly as without a GPU. Videos and other image formats always decode on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ccr.errors import CcrError
from ccr.stages.media import MediaError
from ccr.stages.runner import Failure
from ccr.vision.pixels import Encoded, Prepare, Prepared

DECODERS = ("cpu", "gpu", "auto")


def gpu_unavailable(device: str) -> str | None:
    """Why JPEGs cannot be decoded on the GPU here, or None when they can."""
    if not device.startswith("cuda"):
        return f"the model runs on {device}, not a CUDA device"
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except Exception as e:  # noqa: BLE001 - ImportError, or a torchvision built for another torch
        return f"torchvision is not importable ({type(e).__name__}: {e})"
    return None


def resolve_decoder(choice: str, device: str) -> str:
    """``cpu`` or ``gpu``: ``auto`` takes the GPU where it can; an explicit ``gpu`` that cannot fails at once."""
    if choice not in DECODERS:
        raise CcrError(f"--decode {choice!r}: use one of {', '.join(DECODERS)}")
    why = gpu_unavailable(device) if choice != "cpu" else None
    if choice == "gpu" and why:
        raise CcrError(f"--decode gpu: {why}; use --decode cpu (or auto, which falls back to the CPU)")
    return "cpu" if choice == "cpu" or why else "gpu"


@dataclass
class GpuJpeg:
    """Turns the encoded JPEGs of a loaded batch into model inputs on ``device``."""

    processor: Any  # the model's image processor, torchvision backend
    device: str
    on_cpu: Prepare  # the CPU job (keep_jpeg off), for files nvJPEG refuses

    def prepare(self, loaded: Sequence[tuple[dict[str, Any], Prepared | Encoded]]
                ) -> tuple[list[tuple[dict[str, Any], Prepared]], list[Failure]]:
        encoded = [i for i, (_, item) in enumerate(loaded) if isinstance(item, Encoded)]
        images = self._decode([loaded[i][1].data for i in encoded])  # type: ignore[union-attr]
        decoded = {i: image for i, image in zip(encoded, images) if image is not None}
        pixels = iter(self.processor(images=list(decoded.values()), return_tensors="pt")["pixel_values"]
                      if decoded else ())
        out, failures = [], []
        for i, (row, item) in enumerate(loaded):
            if i in decoded:
                out.append((row, Prepared(pixels=next(pixels)[None], duration=None)))
            elif isinstance(item, Encoded):
                try:
                    out.append((row, self.on_cpu(item.path, "image")))
                except MediaError as e:
                    failures.append(Failure(row["media_id"], str(e)))
            else:
                out.append((row, item))
        return out, failures

    def _decode(self, data: list[bytes]) -> list[Any]:
        """One batched nvJPEG call; if it refuses the batch, file by file (None: refused)."""
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        def call(items: list[bytes]) -> list[Any]:
            tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in items]
            return decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device, apply_exif_orientation=True)

        if not data:
            return []
        try:
            return call(data)
        except (RuntimeError, ValueError):  # nvJPEG's refusals
            out = []
            for d in data:
                try:
                    out.extend(call([d]))
                except (RuntimeError, ValueError):
                    out.append(None)
            return out
