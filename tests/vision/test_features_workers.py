"""``ccr features`` with decoding in worker processes: the same features and failures as decoding in the stage's process."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from ccr.corpus.corpus import Corpus
from ccr.stages.runner import RunOptions, run_stage
from ccr.vision.features import STAGE, FeaturesConfig

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("media_corpus")
from media_corpus import BROKEN  # noqa: E402

pytest_plugins = ["media_corpus"]  # its corpus_dir fixture: a private copy of a corpus of real media


def reasons(corpus: Corpus) -> dict[str, str]:
    failures = corpus.failures()
    return dict(zip(failures["row_id"], failures["reason"]))


@pytest.mark.parametrize("variant", ["pooled", "patches"])
def test_zero_and_two_workers_write_identical_features_and_failures(corpus_dir, tmp_path, variant):
    pooled = tmp_path / "pooled"
    shutil.copytree(corpus_dir, pooled)
    for directory, workers in ((corpus_dir, 0), (pooled, 2)):
        # batches of 3 across images and videos, so rows are read one batch ahead
        run_stage(Corpus.open(directory), STAGE, FeaturesConfig(model="tiny/clip", variant=variant, workers=workers),
                  RunOptions(batch_size=3, progress=False))
    inline, workers = Corpus.open(corpus_dir), Corpus.open(pooled)
    name = "clip" if variant == "pooled" else f"clip-{variant}"
    a, b = inline.features(name), workers.features(name)
    assert a.ids() == b.ids() and {"v0000", "v0001", "m0000"} <= set(a.ids())
    for media_id in a.ids():
        np.testing.assert_array_equal(a.get(media_id), b.get(media_id))
    assert reasons(inline) == reasons(workers)
    assert set(reasons(workers)) == set(BROKEN), "unreadable media are failure rows with workers too"
    for media_id, why in BROKEN.items():
        assert why in reasons(workers)[media_id]
    durations = workers.table("media").drop_nulls("decoded_duration")
    assert sorted(durations["media_id"]) == ["v0000", "v0001", "v0002"]
