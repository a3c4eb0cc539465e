"""GPU JPEG decoding: chosen only where torchvision and CUDA are there, and its batch logic on a stand-in decoder.

No GPU and no torchvision here: the fallback is tested for real, and ``GpuJpeg`` runs against a
stand-in ``torchvision.io`` that decodes with PIL (refusing CMYK, as nvJPEG may), on the CPU. With
PIL behind it, the "GPU" pixels must equal the CPU job's exactly, which checks the order, the
hand-over to the CPU for refused files and their failure reasons.
"""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.models import resolve
from ccr.stages.media import Sampling
from ccr.stages.runner import RunOptions, run_stage
from ccr.vision.features import STAGE, FeaturesConfig
from ccr.vision.gpu_jpeg import GpuJpeg, resolve_decoder
from ccr.vision.pixels import Encoded, Prepare, Prepared

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("media_corpus")
pytest_plugins = ["media_corpus"]  # its corpus_dir fixture: a private copy of a corpus of real media


@pytest.fixture
def no_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision raises ImportError
    monkeypatch.delitem(sys.modules, "torchvision.io", raising=False)


def test_auto_falls_back_to_the_cpu_and_an_explicit_gpu_says_why_not(no_torchvision):
    assert resolve_decoder("cpu", "cuda") == "cpu"
    assert resolve_decoder("auto", "cpu") == "cpu"
    assert resolve_decoder("auto", "cuda") == "cpu", "no torchvision: the CPU decodes"
    with pytest.raises(CcrError, match=r"--decode gpu: torchvision is not importable .*use --decode cpu"):
        resolve_decoder("gpu", "cuda:0")
    with pytest.raises(CcrError, match="--decode gpu: the model runs on cpu, not a CUDA device"):
        resolve_decoder("gpu", "cpu")
    with pytest.raises(CcrError, match="--decode 'nvjpeg': use one of cpu, gpu, auto"):
        resolve_decoder("nvjpeg", "cpu")


def test_the_stage_with_decode_auto_and_no_torchvision_writes_what_the_cpu_writes(corpus_dir, no_torchvision):
    summary = run_stage(Corpus.open(corpus_dir), STAGE, FeaturesConfig(model="tiny/clip", decode="auto", workers=0),
                        RunOptions(batch_size=4, progress=False))
    corpus = Corpus.open(corpus_dir)
    assert corpus.runs()[-1]["models"]["decode"] == "cpu"
    again = run_stage(corpus, STAGE, FeaturesConfig(model="tiny/clip", decode="cpu"), RunOptions(progress=False))
    assert summary.rows_in > 0 and again.rows_in == 0, "a CPU-decoded run keeps one fingerprint"


def _decode_jpeg(tensors, mode, device, apply_exif_orientation):
    """nvJPEG's contract, with PIL behind it: CHW uint8 RGB per file; a file it cannot take fails the call."""
    import torch

    assert mode == "RGB" and apply_exif_orientation
    out = []
    for t in tensors:
        try:
            with Image.open(io.BytesIO(t.numpy().tobytes())) as image:
                if image.mode == "CMYK":
                    raise RuntimeError("nvjpeg: unsupported colour space")
                image.load()
                rgb = ImageOps.exif_transpose(image).convert("RGB")
        except OSError as e:
            raise RuntimeError(f"nvjpeg: {e}") from None
        out.append(torch.from_numpy(np.array(rgb)).permute(2, 0, 1).to(device))
    return out


@pytest.fixture
def stand_in_torchvision(monkeypatch):
    module = types.ModuleType("torchvision.io")
    module.decode_jpeg = _decode_jpeg
    module.ImageReadMode = types.SimpleNamespace(RGB="RGB")
    package = types.ModuleType("torchvision")
    package.io = module
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.io", module)


def test_gpu_batches_keep_row_order_and_hand_refused_files_to_the_cpu(tmp_path, stand_in_torchvision):
    from transformers import AutoImageProcessor

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / f"{name}.jpg")
    Image.new("CMYK", (48, 32), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("RGB", (30, 30), (9, 9, 9)).save(tmp_path / "c.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"not really a jpeg")
    processor = AutoImageProcessor.from_pretrained(resolve("tiny/clip").path)
    cpu = Prepare(processor=processor, sampling=Sampling(), dtype="float32")
    names = ["a.jpg", "cmyk.jpg", "c.png", "broken.jpg", "b.jpg"]
    read = [Prepare(processor, Sampling(), "float32", keep_jpeg=True)(tmp_path / n, "image") for n in names]
    assert [type(r) for r in read] == [Encoded, Encoded, Prepared, Encoded, Encoded]

    rows = [{"media_id": n} for n in names]
    loaded, failures = GpuJpeg(processor, "cpu", on_cpu=cpu).prepare(list(zip(rows, read)))
    assert [row["media_id"] for row, _ in loaded] == ["a.jpg", "cmyk.jpg", "c.png", "b.jpg"]
    assert [f.row_id for f in failures] == ["broken.jpg"] and "unreadable image" in failures[0].reason
    for (row, prepared) in loaded:
        expected = cpu(tmp_path / row["media_id"], "image").pixels
        np.testing.assert_array_equal(np.asarray(prepared.pixels), expected)
        assert prepared.duration is None
