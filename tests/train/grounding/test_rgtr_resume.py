"""An RGTR run killed with SIGKILL mid-training and started again ends exactly where an
uninterrupted run ends: same metric history, same best and last weights (anchors included).
Checkpoints every 2 steps, so the kill lands mid-epoch most of the time. Pinned to the CPU, where
training is bit-reproducible (CUDA kernels need not be)."""

from rgtr_helpers import rgtr_sets
from train_helpers import same_run, sigkill_after_first_epoch

from ccr.train.run.loop import train


def test_rgtr_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, grounding_corpus):
    args = rgtr_sets(epochs=3, checkpoint_every=2, lang="en", device="cpu")
    train(grounding_corpus, tmp_path / "reference", method="rgtr", sets=args, log=lambda _: None)

    run = tmp_path / "killed"
    code = (f"from ccr.train.run.loop import train; "
            f"train({str(grounding_corpus)!r}, {str(run)!r}, method='rgtr', sets={args!r})")
    killed_at = sigkill_after_first_epoch(code, run)
    assert 1 <= killed_at["epoch"] < 3 and not killed_at["finished"]

    lines: list[str] = []
    train(grounding_corpus, run, method="rgtr", sets=args, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    assert "media.static_anchors" in same_run(run, tmp_path / "reference")
