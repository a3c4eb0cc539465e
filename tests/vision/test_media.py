"""Media loading: every colour mode to RGB, EXIF rotation, frame sampling on real PyAV videos, broken files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from ccr.stages.media import MediaError, Sampling, load_image, load_video, load_visual

FPS = 8


def write_grey_video(path: Path, levels: list[int], fps: int = FPS) -> Path:
    """Frame k is a flat grey of ``levels[k]``, so a decoded frame tells which source frame it is."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.options = {"crf": "0", "preset": "veryfast"}
        for level in levels:
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), level, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def grey(image: Image.Image) -> int:
    return int(np.asarray(image)[16, 16, 0])


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_grey_video(tmp_path_factory.mktemp("video") / "grey.mp4", [10 * k for k in range(16)])


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.info["transparency"] = 1
    return image


@pytest.mark.parametrize("name, make, expected", [
    ("cmyk.jpg", lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), (255, 0, 0)),
    ("alpha.png", lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 0)), (255, 255, 255)),
    ("half-alpha.png", lambda: Image.new("LA", (8, 8), (0, 128)), (127, 127, 127)),
    ("palette.png", _palette_with_transparency, (255, 255, 255)),
    ("grey16.png", lambda: Image.fromarray(np.full((8, 8), 32767, np.uint16)), (127, 127, 127)),
    ("bits.png", lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
    ("grey.png", lambda: Image.new("L", (8, 8), 77), (77, 77, 77)),
])
def test_every_colour_mode_becomes_8_bit_rgb(tmp_path, name, make, expected):
    path = tmp_path / name
    original = make()
    original.save(path, **({"transparency": 1} if original.mode == "P" else {}))
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (8, 8)
    assert tuple(np.asarray(image)[0, 0]) == pytest.approx(expected, abs=2)


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.new("RGB", (40, 20), (255, 0, 0))
    picture.paste((0, 0, 255), (0, 0, 10, 20))  # blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    picture.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    upright = np.asarray(load_image(tmp_path / "rotated.jpg"))
    assert upright.shape == (40, 20, 3), "width and height swap"
    assert upright[2, 10, 2] > 200 and upright[37, 10, 0] > 200, "the left band is now at the top"


def test_broken_images_raise_media_errors_naming_the_problem(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:200])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    (tmp_path / "folder.png").mkdir()
    cases = {"cut.png": "truncated", "empty.jpg": "file is empty", "junk.png": "cannot identify",
             "missing.png": "file not found", "folder.png": "not a file"}
    for name, reason in cases.items():
        with pytest.raises(MediaError, match=reason):
            load_image(tmp_path / name)


def test_uniform_sampling_takes_the_frame_on_screen_at_each_segment_centre(video):
    clip = load_video(video, Sampling(frames=4))
    assert clip.duration == pytest.approx(2.0) and clip.is_video
    assert clip.times == pytest.approx([0.25, 0.75, 1.25, 1.75])
    # at 8 fps the centres fall on source frames 2, 6, 10 and 14
    assert [grey(f) for f in clip.frames] == pytest.approx([20, 60, 100, 140], abs=3)
    assert all(f.mode == "RGB" and f.size == (32, 32) for f in clip.frames)


def test_fixed_fps_and_clip_sampling(video):
    at_2fps = load_video(video, Sampling(fps=2))
    assert at_2fps.times == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert [grey(f) for f in at_2fps.frames] == pytest.approx([0, 40, 80, 120], abs=3)
    dense = load_video(video, Sampling(fps=20))
    assert len(dense.frames) == 40, "faster than the video: frames repeat, none are invented"
    clips = load_video(video, Sampling(clip_seconds=0.75))
    assert clips.times == pytest.approx([0.375, 1.125, 1.75]), "the last clip is short; its centre moves in"


def test_sampling_schedules_on_odd_durations():
    assert Sampling(fps=1).times(0.3) == [0.0], "a video shorter than one period still gives a frame"
    assert Sampling(frames=2).times(1.0) == pytest.approx([0.25, 0.75])
    assert Sampling(clip_seconds=2, fps=5, frames=3).times(4.0) == pytest.approx([1.0, 3.0]), "clips win"
    with pytest.raises(ValueError):
        Sampling(frames=0)


def test_broken_videos_raise_media_errors(tmp_path, video):
    (tmp_path / "cut.mp4").write_bytes(video.read_bytes()[:300])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(bytes(1000))
    with av.open(str(tmp_path / "sound.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        silence.sample_rate = 16000
        for packet in [*stream.encode(silence), *stream.encode(None)]:
            container.mux(packet)
    cases = {"cut.mp4": "unreadable video", "empty.mp4": "file is empty", "junk.mp4": "unreadable video",
             "sound.mp4": "no video stream"}
    for name, reason in cases.items():
        with pytest.raises(MediaError, match=reason):
            load_video(tmp_path / name)


def test_load_visual_dispatches_on_the_media_row(tmp_path, video):
    Image.new("RGB", (5, 7)).save(tmp_path / "a.png")
    image = load_visual(tmp_path / "a.png", "image")
    assert not image.is_video and len(image.frames) == 1 and image.frames[0].size == (5, 7)
    assert len(load_visual(video, "video", Sampling(frames=3)).frames) == 3
    with pytest.raises(MediaError, match="no path"):
        load_visual(None, "image")
    with pytest.raises(MediaError, match="unknown modality 'audio'"):
        load_visual(tmp_path / "a.png", "audio")
