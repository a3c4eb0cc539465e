"""A small corpus of real media for the visual stages' tests: toy images and PyAV videos, odd image
modes, and broken files whose failures the tests expect by id.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ccr.corpus.corpus import Corpus
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions
from ccr.testing.toy_corpus import write_toy_corpus

# media_id -> why the stages must fail it
BROKEN = {
    "bad-empty": "file is empty",
    "bad-junk": "unreadable image",
    "bad-missing": "file not found",
    "bad-truncated": "unreadable video",
}
ODD_IMAGES = ("odd-cmyk", "odd-rgba")


def write_media_corpus(root: Path) -> Path:
    """Write sources under ``root/src``, ingest them into ``root/corpus`` and return the corpus path."""
    src = write_toy_corpus(root / "src", n_train=4, n_val=1, n_test=1, videos=3)
    Image.new("CMYK", (48, 32), (0, 255, 255, 0)).save(src / "images" / "odd-cmyk.jpg")
    Image.new("RGBA", (40, 40), (0, 0, 255, 0)).save(src / "images" / "odd-rgba.png")
    (src / "images" / "bad-empty.png").write_bytes(b"")
    (src / "images" / "bad-junk.png").write_bytes(b"this is not an image")
    video = (src / "videos" / "v0000.mp4").read_bytes()
    (src / "videos" / "bad-truncated.mp4").write_bytes(video[: len(video) // 2])
    extra = [("odd-cmyk", "images/odd-cmyk.jpg", "image"), ("odd-rgba", "images/odd-rgba.png", "image"),
             ("bad-empty", "images/bad-empty.png", "image"), ("bad-junk", "images/bad-junk.png", "image"),
             ("bad-missing", "images/bad-missing.png", "image"),
             ("bad-truncated", "videos/bad-truncated.mp4", "video")]
    with open(src / "captions.jsonl", "a", encoding="utf-8") as f:
        for media_id, path, modality in extra:
            f.write(json.dumps({"media_id": media_id, "path": path, "split": "train", "modality": modality,
                                "lang": "en", "text": "something", "caption_id": f"{media_id}#en#0"}) + "\n")
    corpus = root / "corpus"
    ingest("jsonl", src / "captions.jsonl", corpus, options=RunOptions(progress=False))
    return corpus


@pytest.fixture(scope="module")
def media_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_media_corpus(tmp_path_factory.mktemp("media"))


@pytest.fixture
def corpus_dir(media_master: Path, tmp_path: Path) -> Path:
    """A private copy of the media corpus (import this fixture together with ``media_master``)."""
    dest = tmp_path / "corpus"
    shutil.copytree(media_master, dest)
    return dest


_RUN = """
import json, sys
from ccr.stages.runner import RunOptions
from ccr.stages.table import run
run(sys.argv[1], sys.argv[2], overrides=json.loads(sys.argv[3]),
    options=RunOptions(batch_size=1, chunk_rows=1, progress=False))
"""


def kill_mid_run(stage: str, corpus_dir: Path, overrides: dict[str, Any]) -> int:
    """Run a stage in another process, SIGKILL it right after its first commit; returns rows committed by then."""
    markers = corpus_dir / ".state" / "commits" / stage
    proc = subprocess.Popen([sys.executable, "-c", _RUN, stage, str(corpus_dir), json.dumps(overrides)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not any(
                not m.name.startswith(".tmp-") for m in markers.rglob("*.json")):
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the stage ended before it was killed: {err[-2000:]}"
    return sum(len(c.done) + len(c.failed) for c in Corpus.open(corpus_dir).commits(stage, with_ids=True))
