"""BigFile, npy + ids and per-video npz helpers: round trips, memory mapping, and refused input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ccr.errors import CcrError
from ccr.formats.bigfile import (
    frames_by_video,
    read_bigfile,
    read_npy_features,
    read_npz_dir,
    read_video2frames,
    write_bigfile,
    write_npy_features,
    write_npz,
    write_video2frames,
)


def features(n: int, d: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)


def test_bigfile_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    ids = ["video7_0", "video7_1", "video8_0"]
    array = features(3, 5)
    write_bigfile(tmp_path / "feat", ids, array)
    assert (tmp_path / "feat" / "shape.txt").read_text() == "3 5"
    assert (tmp_path / "feat" / "id.txt").read_text() == "video7_0 video7_1 video8_0"
    assert (tmp_path / "feat" / "feature.bin").read_bytes() == array.tobytes()
    got_ids, got = read_bigfile(tmp_path / "feat")
    assert got_ids == ids
    assert isinstance(got, np.memmap) and got.dtype == np.float32
    np.testing.assert_array_equal(got, array)


def test_bigfile_reads_the_original_layout(tmp_path: Path) -> None:
    """id.txt written one id per line and float64 input cast to float32 both work."""
    directory = tmp_path / "orig"
    directory.mkdir()
    array = features(2, 3)
    array.tofile(directory / "feature.bin")
    (directory / "id.txt").write_text("a\nb\n")
    (directory / "shape.txt").write_text("2 3\n")
    ids, got = read_bigfile(directory)
    assert ids == ["a", "b"]
    np.testing.assert_array_equal(got, array)
    write_bigfile(tmp_path / "f64", ["a", "b"], array.astype(np.float64))
    np.testing.assert_array_equal(read_bigfile(tmp_path / "f64")[1], array)


def test_bigfile_disagreements_are_clear_errors(tmp_path: Path) -> None:
    write_bigfile(tmp_path / "f", ["a", "b"], features(2, 4))
    (tmp_path / "f" / "shape.txt").write_text("2 5")
    with pytest.raises(CcrError, match=r"feature\.bin has 32 bytes but shape\.txt says 2 x 5 float32 \(40 bytes\)"):
        read_bigfile(tmp_path / "f")
    (tmp_path / "f" / "shape.txt").write_text("3 4")
    with pytest.raises(CcrError, match=r"shape\.txt says 3 rows but id\.txt holds 2 ids"):
        read_bigfile(tmp_path / "f")
    (tmp_path / "f" / "shape.txt").write_text("two by four")
    with pytest.raises(CcrError, match="expected 'N D'"):
        read_bigfile(tmp_path / "f")
    (tmp_path / "f" / "shape.txt").unlink()
    with pytest.raises(CcrError, match=r"no shape\.txt"):
        read_bigfile(tmp_path / "f")
    with pytest.raises(CcrError, match="3 feature rows but 2 ids"):
        write_bigfile(tmp_path / "g", ["a", "b"], features(3, 4))
    with pytest.raises(CcrError, match="whitespace"):
        write_bigfile(tmp_path / "g", ["a b", "c"], features(2, 4))


def test_empty_bigfile(tmp_path: Path) -> None:
    write_bigfile(tmp_path / "e", [], np.zeros((0, 8), dtype=np.float32))
    ids, array = read_bigfile(tmp_path / "e")
    assert ids == [] and array.shape == (0, 8)


def test_video2frames_round_trip_and_frame_stacking(tmp_path: Path) -> None:
    mapping = {"video7": ["video7_0", "video7_1"], "video8": ["video8_0"]}
    write_video2frames(tmp_path / "video2frames.txt", mapping)
    assert read_video2frames(tmp_path / "video2frames.txt") == mapping
    ids = ["video8_0", "video7_1", "video7_0"]
    array = features(3, 2)
    stacked = dict(frames_by_video(ids, array, mapping))
    np.testing.assert_array_equal(stacked["video7"], array[[2, 1]])
    np.testing.assert_array_equal(stacked["video8"], array[[0]])
    with pytest.raises(CcrError, match="frame 'video9_0' is not in the BigFile"):
        list(frames_by_video(ids, array, {"video9": ["video9_0"]}))


def test_video2frames_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "video2frames.txt"
    path.write_text(f"{{'v': __import__('os').mkdir({str(marker)!r})}}")
    with pytest.raises(CcrError, match="not a Python dict literal"):
        read_video2frames(path)
    assert not marker.exists()
    path.write_text("__import__('os')")
    with pytest.raises(CcrError, match="not a Python dict literal"):
        read_video2frames(path)
    path.write_text("{'v': [1, 2]}")
    with pytest.raises(CcrError, match=r"dict of video id \(str\) -> list of frame ids"):
        read_video2frames(path)


def test_npy_features_round_trip(tmp_path: Path) -> None:
    array = features(4, 3)
    ids = ["1000092795", "10002456", "1000268201", "1000344755"]
    npy = tmp_path / "FeatureData" / "resnet_152" / "train-resnet_152-avgpool.npy"
    id_file = tmp_path / "FeatureData" / "train_id.txt"
    write_npy_features(npy, id_file, ids, array)
    assert id_file.read_text() == "".join(f"{i}\n" for i in ids)
    got_ids, got = read_npy_features(npy, id_file)
    assert got_ids == ids and isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, array)
    id_file.write_text("a\nb\n")
    with pytest.raises(CcrError, match="has 4 rows but .*train_id.txt holds 2 ids"):
        read_npy_features(npy, id_file)


def test_npz_dir_round_trip(tmp_path: Path) -> None:
    clips = {"NUsG9BgSes0_210.0_360.0": features(75, 4), "abc_0.0_10.0": features(5, 4)}
    for vid, array in clips.items():
        write_npz(tmp_path / "clip_features", vid, array)
    got = dict(read_npz_dir(tmp_path / "clip_features"))
    assert sorted(got) == sorted(clips)
    for vid, array in clips.items():
        np.testing.assert_array_equal(got[vid], array)
    np.savez(tmp_path / "clip_features" / "wrong.npz", pooler_output=features(1, 4))
    with pytest.raises(CcrError, match="no 'features' array"):
        list(read_npz_dir(tmp_path / "clip_features"))
    with pytest.raises(CcrError, match=r"should be \[T, D\]"):
        write_npz(tmp_path, "v", np.zeros(3))
