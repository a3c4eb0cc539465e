"""``--engine ray`` on a simulated two-node cluster gives the rows a local run gives, and uses both nodes.

``ray.cluster_utils.Cluster`` is Ray's own way to test multi-node code on one machine: a head and
two worker nodes, each its own raylet with its own CPUs. The head gets no CPUs, so every actor
must land on a worker node, one per node (each has one CPU). The cluster lives in a child process
(this module run as a script) with its own ``RAY_TMPDIR``: ``Cluster`` records its address where
any plain ``ray.init()`` on the machine would find and join it, which would capture the session's
``ray_local`` (or another xdist worker's). The child runs ``ccr ingest`` (a jsonl source with
every kind of bad line, cut into pieces of 512 bytes so that both nodes read some: first
``--limit 25``, then the rest), ``ccr features`` (images and a video) and ``ccr translate`` through
the CLI with ``RAY_ADDRESS`` set and the corpus and media paths relative to its working directory,
as a user would type them (``--media-root ../src``), and reports the nodes its actors ran on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "formats" / "ingest"))
from test_frame_path import seed, write_source  # noqa: E402

INGEST = ["ingest", "ingest", "../src/planted.jsonl", "--format", "jsonl", "--set", "max_chars=50"]
FEATURES = ["features", "features", "--model", "tiny/clip", "--batch-size", "2", "--media-root", "../src"]
TRANSLATE = ["translate", "translate", "--lang", "de", "--models", "random", "--beam-size", "1",
             "--max-length", "6", "--batch-size", "16"]
STAGES = ("ingest", "features", "translate")


def _ccr(args: list[str], cwd: Path) -> None:
    from typer.testing import CliRunner

    from ccr.cli import app

    os.chdir(cwd)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def _on_cluster(workdir: Path) -> dict[str, object]:
    """Run the stages with ``--engine ray`` on a head and two one-CPU workers; the nodes their actors used."""
    import ray
    from ray.cluster_utils import Cluster

    from ccr.formats.ingest import pieces

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        workers = [cluster.add_node(num_cpus=1).node_id for _ in range(2)]
        os.environ["RAY_ADDRESS"] = cluster.address
        pieces.PIECE_BYTES = 512
        _ccr([*INGEST, "--engine", "ray", "--limit", "25"], workdir)
        _ccr([*INGEST, "--engine", "ray", "--ray-actors", "2"], workdir)
        for args in (FEATURES, TRANSLATE):
            _ccr([*args, "--engine", "ray"], workdir)
        actors = cluster.global_state.actor_table(None).values()

        def nodes(kind: str) -> list[str]:
            return sorted({a["Address"]["NodeID"] for a in actors if kind in a["ActorClassName"]})

        return {"workers": sorted(workers), "used": nodes("_StageActor"), "readers": nodes("_Caller")}
    finally:
        ray.shutdown()
        cluster.shutdown()


def _tables(corpus: Path) -> dict[str, pl.DataFrame]:
    from ccr.corpus.corpus import Corpus

    c = Corpus.open(corpus)
    return {"media": c.table("media").sort("media_id"), "captions": c.table("captions").sort("caption_id"),
            "failures": c.failures().sort("failure_id")}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of a few images and one video, and a copy of it for each stage; a source with bad
    lines, and a corpus that holds a media row some of them clash with, to ingest it into."""
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions
    from ccr.testing.toy_corpus import write_toy_corpus

    root = tmp_path_factory.mktemp("cluster")
    src = write_toy_corpus(root / "src", n_train=4, n_val=1, n_test=1, videos=1)
    write_source(src / "planted.jsonl")
    seed(root / "ingest", root)
    ingest("jsonl", src / "captions.jsonl", root / "features", options=RunOptions(progress=False))
    shutil.copytree(root / "features", root / "translate")
    return root


def test_two_node_cluster_gives_the_local_rows_and_runs_on_both_nodes(sources, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    shutil.copytree(sources / "src", tmp_path / "src")  # --media-root ../src from either run's directory
    for dest in (local, remote):
        for stage in STAGES:
            shutil.copytree(sources / stage, dest / stage)
    cwd = Path.cwd()
    try:
        for args in (INGEST, FEATURES, TRANSLATE):
            _ccr(args, local)
    finally:
        os.chdir(cwd)
    with tempfile.TemporaryDirectory(prefix="ccr-ray-", dir="/tmp") as ray_tmp:  # short: Ray's sockets live there
        env = {**os.environ, "RAY_TMPDIR": ray_tmp}
        env.pop("RAY_ADDRESS", None)
        child = subprocess.run([sys.executable, __file__, str(remote)], env=env, capture_output=True, text=True,
                               timeout=300)
    assert child.returncode == 0, child.stderr[-4000:]
    nodes = json.loads(child.stdout.strip().splitlines()[-1])
    assert nodes["used"] == nodes["workers"], "one stage actor on each worker node, none on the CPU-less head"
    assert nodes["readers"] == nodes["workers"], "ingest read its source on both worker nodes"

    from ccr.corpus.corpus import Corpus

    assert _tables(local / "ingest")["failures"].height >= 20, "every kind of bad line failed"
    for stage in STAGES:
        for name, table in _tables(local / stage).items():
            assert table.equals(_tables(remote / stage)[name]), (stage, name)
    want, got = Corpus.open(local / "features").features("clip"), Corpus.open(remote / "features").features("clip")
    assert sorted(got.ids()) == sorted(want.ids()) and len(want.ids()) == 7, "six images and the video"
    for media_id in want.ids():
        np.testing.assert_array_equal(got.get(media_id), want.get(media_id))


def test_actors_reserve_an_equal_share_that_fits_on_the_nodes():
    """By default one actor per GPU, else per node; a CPU share never spans two nodes."""
    from ccr.stages.ray_engine import actor_shape

    assert actor_shape([(16.0, 0.0), (16.0, 0.0)], None) == (2, 16, 0.0)
    assert actor_shape([(16.0, 0.0), (16.0, 0.0)], 4) == (4, 8, 0.0)
    assert actor_shape([(4.0, 0.0), (32.0, 0.0)], 2) == (2, 16, 0.0), "both on the big node, not 4 CPUs each"
    assert actor_shape([(2.0, 0.0)], 8) == (8, 1, 0.0), "more actors than CPUs: one each, Ray queues the rest"
    assert actor_shape([(64.0, 8.0), (64.0, 8.0)], None) == (16, 8, 1.0)
    assert actor_shape([(16.0, 1.0)], 2) == (2, 8, 0.5), "two actors share the one GPU, each told it is theirs"


def test_a_media_stage_decodes_in_the_cpus_its_actor_reserved(ray_local):
    """Not in a pool sized to the whole node: the actor's own process takes one of its CPUs."""
    from ccr.stages.ray_engine import sized_to_actor
    from ccr.translate.stage import TranslateConfig
    from ccr.vision.features import FeaturesConfig

    sized = ray_local.remote(num_cpus=2)(sized_to_actor)
    assert ray_local.get(sized.remote(FeaturesConfig())).workers == 1
    assert ray_local.get(sized.remote(FeaturesConfig(workers=4))).workers == 4, "a count the user gave is kept"
    assert ray_local.get(sized.remote(TranslateConfig())) == TranslateConfig(), "a stage without workers as it was"


def test_actors_read_the_next_batch_while_the_model_works(toy_corpus, ray_local):
    """A stage that prefetches gets a few batches per actor call, as the local runner's loop does."""
    from upper_stage import PREFETCHING, UpperConfig

    from ccr.corpus.corpus import Corpus
    from ccr.stages.runner import RunOptions, run_stage

    run_stage(Corpus.open(toy_corpus), PREFETCHING, UpperConfig(allow_stars=True),
              RunOptions(engine="ray", ray_concurrency=1, batch_size=4, chunk_rows=16, progress=False))
    ahead = Corpus.open(toy_corpus).table("captions")["ahead"].drop_nulls()
    assert ahead.len() > 8 and ahead.any(), "some batches ran with the next one already being read"


if __name__ == "__main__":
    print(json.dumps(_on_cluster(Path(sys.argv[1]))))
