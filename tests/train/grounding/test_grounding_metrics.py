"""Grounding metrics: hand-built fixtures and a loop-based reference of the QVHighlights rules.

The module was also checked once, outside this suite, against the metric files released with
moment_detr (standalone_eval/sample_val_preds) and CG-DETR (results/qvhighlights): every number
matched; those files are not vendored here.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ccr.errors import CcrError
from ccr.train.eval.grounding_metrics import (
    MR_THRESHOLDS,
    evaluate_qvhighlights,
    evaluate_single_window,
    read_jsonl,
    temporal_iou,
    write_predictions,
)


def pred(qid: Any, windows: list[list[float]], saliency: list[float] | None = None) -> dict:
    out: dict[str, Any] = {"qid": qid, "pred_relevant_windows": windows}
    if saliency is not None:
        out["pred_saliency_scores"] = saliency
    return out


def gt(qid: Any, windows: list[list[float]], duration: float = 150) -> dict:
    return {"qid": qid, "duration": duration, "relevant_windows": windows}


# --- a loop-based reference, written from the rules in reference/video_methods.md §2.6 ----------


def ref_iou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def ref_ap(windows: list[list[float]], gts: list[list[float]], thr: float) -> float:
    ranked = sorted(windows[:10], key=lambda w: -w[2])  # stable: ties keep list order
    if not ranked:
        return 0.0
    matched: set[int] = set()
    hits = []
    for w in ranked:
        free = [(ref_iou(w, g), i) for i, g in enumerate(gts) if i not in matched]
        free = [c for c in free if c[0] >= thr]
        if free:
            matched.add(max(free)[1])  # highest IoU, then the later window
        hits.append(bool(free))
    precisions, recalls, tp = [], [], 0
    for n, hit in enumerate(hits, 1):
        tp += hit
        precisions.append(tp / n)
        recalls.append(tp / len(gts))
    ap, prev = 0.0, 0.0
    for i, r in enumerate(recalls):
        ap += (r - prev) * max(precisions[i:])
        prev = r
    return ap


def ref_top1(windows: list[list[float]], gts: list[list[float]]) -> float:
    return max(ref_iou(windows[0], g) for g in gts) if windows else 0.0


def ref_ranking_ap(scores: list[float], labels: list[float]) -> float:
    """Sweep every distinct score as a threshold; average the envelope where recall grows."""
    if sum(labels) == 0:
        return 0.0
    points = []  # (tp, precision) per threshold, highest threshold first
    for t in sorted(set(scores), reverse=True):
        chosen = [y for s, y in zip(scores, labels) if s >= t]
        points.append((sum(chosen), sum(chosen) / len(chosen)))
    kept, prev_tp = [], 0
    for k, (tp, _) in enumerate(points):
        if tp > prev_tp:
            kept.append(max(p for _, p in points[k:]))
        prev_tp = tp
    return sum(kept) / len(kept)


def ref_evaluate(preds: list[dict], gts: list[dict]) -> dict[str, float]:
    """Flat {section/metric/threshold: value} in percent, unrounded."""
    by_qid = {p["qid"]: p for p in preds}
    out: dict[str, float] = {}
    ranges = {"full": None, "short": (0, 10), "middle": (10, 30), "long": (30, 150)}
    for name, rng in ranges.items():
        pairs = []
        for g in gts:
            ws = [w for w in g["relevant_windows"] if rng is None or rng[0] < w[1] - w[0] <= rng[1]]
            if ws:
                pairs.append((by_qid[g["qid"]]["pred_relevant_windows"], ws))
        if not pairs:
            continue
        aps = [float(np.mean([ref_ap(p, g, t) for p, g in pairs])) for t in MR_THRESHOLDS]
        for t, ap in zip(MR_THRESHOLDS, aps):
            out[f"{name}/MR-mAP/{t}"] = 100 * ap
            out[f"{name}/MR-R1/{t}"] = 100 * float(np.mean([ref_top1(p, g) >= t for p, g in pairs]))
        out[f"{name}/MR-mAP/average"] = 100 * float(np.mean(aps))
    for level_name, level in (("Fair", 2), ("Good", 3), ("VeryGood", 4)):
        hits, aps = [], []
        for g in gts:
            n_clips = int(g["duration"] / 2)
            labels = [[0.0] * 3 for _ in range(n_clips)]
            for cid, row in zip(g["relevant_clip_ids"], g["saliency_scores"]):
                labels[cid] = [float(v >= level) for v in row]
            s = list(by_qid[g["qid"]]["pred_saliency_scores"])
            top = int(np.argmax(s))
            hits.append(max(labels[top]) if top < n_clips else 0.0)
            s = (s + [0.0] * n_clips)[:n_clips]
            aps += [ref_ranking_ap(s, [row[a] for row in labels]) for a in range(3)]
        out[f"HL-min-{level_name}/HL-Hit1"] = 100 * float(np.mean(hits))
        out[f"HL-min-{level_name}/HL-mAP"] = 100 * float(np.mean(aps))
    return out


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}/")
        else:
            out[f"{prefix}{k}"] = v
    return out


# --- IoU --------------------------------------------------------------------------------------


def test_temporal_iou_by_hand() -> None:
    iou = temporal_iou([[0, 10], [0, 10], [0, 10], [3, 3]], [[5, 15], [20, 30], [2, 4]])
    # [0,10]&[5,15]: 5 / 15; disjoint: 0; [2,4] inside [0,10]: 2 / 10; zero length: 0
    np.testing.assert_allclose(iou[0], [1 / 3, 0.0, 0.2])
    np.testing.assert_allclose(iou[3], [0.0, 0.0, 0.0])
    assert temporal_iou([[3, 3]], [[3, 3]])[0, 0] == 0.0


# --- moment retrieval, small cases ------------------------------------------------------------


def test_map_and_r1_with_two_gt_windows() -> None:
    # GT A = [0,10], B = [20,30]. Score order: p1 [0,10] (IoU A 1), p2 [0,9] (IoU A 0.9, but A
    # is taken -> FP), p3 [20,26] (IoU B 6/10 = 0.6).
    # t <= 0.6: TP FP TP, precision 1, 1/2, 2/3, recall 1/2, 1/2, 1 -> AP = .5*1 + .5*2/3 = 5/6.
    # t >= 0.65: TP FP FP -> AP = .5 * 1 = 1/2. Average = (3 * 5/6 + 7 * 1/2) / 10 = 0.6.
    r = evaluate_qvhighlights(
        [pred(1, [[0, 10, 0.9], [0, 9, 0.8], [20, 26, 0.7]])], [gt(1, [[0, 10], [20, 30]])]
    )
    assert r["full"]["MR-mAP"]["0.5"] == 83.33
    assert r["full"]["MR-mAP"]["0.6"] == 83.33
    assert r["full"]["MR-mAP"]["0.65"] == 50.0
    assert r["brief"]["MR-full-mAP@0.75"] == 50.0
    assert r["brief"]["MR-full-mAP"] == 60.0
    assert r["brief"]["MR-full-R1@0.5"] == r["brief"]["MR-full-R1@0.7"] == 100.0


def test_score_ties_keep_list_order() -> None:
    # Same score 0.5 for a miss X = [50,60] and a hit Y = [0,10]. Listed X, Y: FP then TP,
    # precision 0, 1/2 at recall 0, 1 -> AP 0.5. Listed Y, X: AP 1.
    g = [gt(1, [[0, 10]])]
    miss_first = evaluate_qvhighlights([pred(1, [[50, 60, 0.5], [0, 10, 0.5]])], g)
    hit_first = evaluate_qvhighlights([pred(1, [[0, 10, 0.5], [50, 60, 0.5]])], g)
    assert miss_first["brief"]["MR-full-mAP"] == 50.0
    assert hit_first["brief"]["MR-full-mAP"] == 100.0
    assert miss_first["brief"]["MR-full-R1@0.5"] == 0.0


def test_r1_uses_list_order_and_map_uses_scores() -> None:
    # The hit is listed first with a low score: R1 takes it; mAP ranks the miss first (AP 0.5).
    r = evaluate_qvhighlights([pred(1, [[0, 10, 0.1], [50, 60, 0.9]])], [gt(1, [[0, 10]])])
    assert r["brief"]["MR-full-R1@0.7"] == 100.0
    assert r["brief"]["MR-full-mAP"] == 50.0


def test_only_first_ten_windows_count() -> None:
    misses = [[100 + 4 * i, 102 + 4 * i, 0.9] for i in range(10)]
    r = evaluate_qvhighlights([pred(1, misses + [[0, 10, 0.95]])], [gt(1, [[0, 10]])])
    assert r["brief"]["MR-full-mAP"] == 0.0  # the hit is 11th in the list, though scored highest


def test_equal_iou_takes_the_later_gt_window() -> None:
    # A = [0,10], B = [10,20]; p1 = [0,20] has IoU 0.5 with both, p2 = [0,10] IoU 1 with A.
    # t = 0.5: p1 takes B (the later), p2 takes A -> AP 1. Had p1 taken A, AP would be 0.5.
    # t >= 0.55: p1 misses, p2 hits A: precision 0, 1/2 at recall 0, 1/2 -> AP 0.25.
    # Average = (1 + 9 * 0.25) / 10 = 0.325.
    r = evaluate_qvhighlights(
        [pred(1, [[0, 20, 0.9], [0, 10, 0.8]])], [gt(1, [[0, 10], [10, 20]])]
    )
    assert r["brief"]["MR-full-mAP@0.5"] == 100.0
    assert r["full"]["MR-mAP"]["0.55"] == 25.0
    assert r["brief"]["MR-full-mAP"] == 32.5


def test_empty_predictions_score_zero() -> None:
    r = evaluate_qvhighlights(
        [pred(1, [[0, 10, 0.9]]), pred(2, [])], [gt(1, [[0, 10]]), gt(2, [[0, 10]])]
    )
    assert r["brief"]["MR-full-mAP"] == 50.0  # AP 1 and AP 0
    assert r["brief"]["MR-full-R1@0.5"] == 50.0


def test_windows_past_the_end_are_not_clipped() -> None:
    # [140,160] vs GT [140,150] in a 150-s video: IoU 10/20 = 0.5 (clipping would give 1).
    r = evaluate_qvhighlights([pred(1, [[140, 160, 1.0]])], [gt(1, [[140, 150]], duration=150)])
    assert r["brief"]["MR-full-R1@0.5"] == 100.0
    assert r["brief"]["MR-full-R1@0.7"] == 0.0


def test_length_buckets() -> None:
    # q1: one 8-s window (short). q2: a 20-s (middle) and a 60-s (long) window. q3: 150 s (long).
    preds = [
        pred(1, [[0, 8, 0.9]]),
        pred(2, [[40, 100, 0.9], [0, 20, 0.8]]),
        pred(3, [[0, 100, 0.9]]),
    ]
    gts = [gt(1, [[0, 8]]), gt(2, [[0, 20], [40, 100]]), gt(3, [[0, 150]])]
    r = evaluate_qvhighlights(preds, gts)
    assert r["brief"]["MR-short-mAP"] == 100.0
    # middle keeps only q2 with GT [0,20]: the top window [40,100] is a miss, the second a hit:
    # AP 0.5; R1 looks at [40,100] only: 0.
    assert r["middle"]["MR-mAP"]["average"] == 50.0
    assert r["middle"]["MR-R1"]["0.5"] == 0.0
    # long: q2 (GT [40,100], hit first: AP 1) and q3 ([0,100] vs [0,150]: IoU 2/3, AP 1 up to
    # t = 0.65, 0 above) -> mean over thresholds of (1 + [t <= 0.65]) / 2 = (10 + 4) / 20 = 0.7.
    assert r["long"]["MR-mAP"]["average"] == 70.0
    assert r["long"]["MR-R1"]["0.7"] == 50.0
    assert list(r) == ["brief", "full", "long", "middle", "short"]


def test_empty_length_bucket_is_left_out() -> None:
    r = evaluate_qvhighlights([pred(1, [[0, 50, 0.9]])], [gt(1, [[0, 50]])])
    assert "short" not in r and "MR-short-mAP" not in r["brief"]
    assert r["brief"]["MR-long-mAP"] == 100.0


# --- highlight detection ----------------------------------------------------------------------


def saliency_gt() -> dict:
    # 8 s -> 4 clips. Labels per annotator 0, 1, 2:
    # clip0 0 0 0, clip1 4 2 0, clip2 3 4 0, clip3 0 0 0.
    return gt(1, [[2, 6]], duration=8) | {
        "relevant_clip_ids": [1, 2],
        "saliency_scores": [[4, 2, 0], [3, 4, 0]],
    }


def test_highlight_by_hand() -> None:
    # Predicted saliency 0.1 0.9 0.5 0.5: ranking clip1, {clip2, clip3} tied, clip0.
    # Thresholds (tp counted per annotator): 0.9 -> 1 clip, 0.5 -> 3 clips, 0.1 -> 4 clips.
    # VeryGood (>= 4): a0 positives {1}: precision 1 at the first threshold -> AP 1.
    #   a1 positives {2}: found at threshold 0.5 with precision 1/3 (envelope max(1/3, 1/4)) -> 1/3.
    #   a2 none -> 0.   mAP = (1 + 1/3 + 0) / 3 = 44.44.
    # Good (>= 3): a0 {1, 2}: precision 1 then 2/3 -> (1 + 2/3) / 2 = 5/6; a1 {2}: 1/3; a2: 0.
    #   mAP = (5/6 + 1/3) / 3 = 38.89.
    # Fair (>= 2): a0 {1, 2}: 5/6; a1 {1, 2}: 5/6; a2: 0. mAP = 55.56.
    # HIT@1: the top clip 1 is positive for a0 at every level -> 100.
    r = evaluate_qvhighlights([pred(1, [[2, 6, 1.0]], [0.1, 0.9, 0.5, 0.5])], [saliency_gt()])
    assert r["HL-min-VeryGood"] == {"HL-mAP": 44.44, "HL-Hit1": 100.0}
    assert r["HL-min-Good"] == {"HL-mAP": 38.89, "HL-Hit1": 100.0}
    assert r["HL-min-Fair"] == {"HL-mAP": 55.56, "HL-Hit1": 100.0}
    assert list(r["brief"])[-6:] == [
        "HL-min-Fair-mAP", "HL-min-Fair-Hit1", "HL-min-Good-mAP",
        "HL-min-Good-Hit1", "HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1",
    ]  # fmt: skip


def test_highlight_prediction_length_is_fitted_to_clip_count() -> None:
    # Six scores for four clips: the maximum sits at index 5, past the video -> HIT@1 misses;
    # AP sees the first four scores (0.1 0.9 0.5 0.5), the same as the hand case.
    six = [0.1, 0.9, 0.5, 0.5, 0, 2.0]
    long = evaluate_qvhighlights([pred(1, [[2, 6, 1]], six)], [saliency_gt()])
    assert long["HL-min-VeryGood"] == {"HL-mAP": 44.44, "HL-Hit1": 0.0}
    # Two scores: padded with zeros to 0.2 0.9 0 0 -> clip1 first, then clip0 (0.2), then a tie.
    # VeryGood a1 {2}: found at the last threshold, 4 clips, precision 1/4 -> (1 + 1/4) / 3.
    short = evaluate_qvhighlights([pred(1, [[2, 6, 1]], [0.2, 0.9])], [saliency_gt()])
    assert short["HL-min-VeryGood"]["HL-mAP"] == round(100 * 1.25 / 3, 2)
    assert short["HL-min-VeryGood"]["HL-Hit1"] == 100.0


def test_no_saliency_labels_means_no_highlight_metrics() -> None:
    r = evaluate_qvhighlights([pred(1, [[0, 10, 1]], [0.5, 0.2])], [gt(1, [[0, 10]])])
    assert not any(k.startswith("HL") for k in r["brief"])


# --- Charades-STA / TACoS -----------------------------------------------------------------------


def test_single_window_metrics() -> None:
    # Top-1 IoUs: [0,10] vs [0,8] = 0.8; [0,10] vs [6,16] = 4/16 = 0.25; empty = 0.
    r = evaluate_single_window(
        [pred("a", [[0, 10, 0.9], [6, 16, 0.1]]), pred("b", [[0, 10, 0.9]]), pred("c", [])],
        [gt("a", [[0, 8]]), gt("b", [[6, 16]]), gt("c", [[0, 5]])],
    )
    assert r["brief"] == {
        "MR-full-R1@0.3": 33.33,
        "MR-full-R1@0.5": 33.33,
        "MR-full-R1@0.7": 33.33,
        "MR-full-mIoU": 35.0,
    }
    assert r["full"] == {"MR-R1": {"0.3": 33.33, "0.5": 33.33, "0.7": 33.33}, "MR-mIoU": 35.0}


# --- input handling -----------------------------------------------------------------------------


def test_qid_mismatch_is_an_error_unless_not_strict() -> None:
    preds = [pred(1, [[0, 10, 1]]), pred(3, [[0, 10, 1]])]
    gts = [gt(1, [[0, 10]]), gt(2, [[0, 10]])]
    with pytest.raises(CcrError, match="strict=False"):
        evaluate_qvhighlights(preds, gts)
    r = evaluate_qvhighlights(preds, gts, strict=False)
    assert r["brief"]["MR-full-mAP"] == 100.0  # only qid 1 is shared


def test_duplicate_qids_and_missing_gt_windows_are_errors() -> None:
    with pytest.raises(CcrError, match="twice"):
        evaluate_qvhighlights([pred(1, []), pred(1, [])], [gt(1, [[0, 1]])])
    with pytest.raises(CcrError, match="relevant_windows"):
        evaluate_qvhighlights([pred(1, [[0, 1, 1]])], [gt(1, [])])


def test_write_then_read_round_trip(tmp_path) -> None:
    path = tmp_path / "preds.jsonl"
    rows = [
        {
            "qid": np.int64(5),
            "vid": "v_0_150",
            "pred_relevant_windows": np.array([[0, 10, 0.2], [4, 8, 0.9], [1, 2, 0.2]]),
            "pred_saliency_scores": np.array([0.5, -1.0], dtype=np.float32),
        },
        {"qid": "s30-d52_0", "pred_relevant_windows": []},
    ]
    write_predictions(path, rows)
    back = read_jsonl(path)
    assert back[0]["qid"] == 5 and back[1]["qid"] == "s30-d52_0"
    assert back[0]["pred_relevant_windows"] == [[4, 8, 0.9], [0, 10, 0.2], [1, 2, 0.2]]
    assert back[0]["pred_saliency_scores"] == [0.5, -1.0]
    assert back[1]["pred_relevant_windows"] == []
    assert [p.name for p in tmp_path.iterdir()] == ["preds.jsonl"]


def test_read_jsonl_names_the_bad_line(tmp_path) -> None:
    path = tmp_path / "gt.jsonl"
    path.write_text(json.dumps({"qid": 1}) + "\n\n{oops\n")
    with pytest.raises(CcrError, match=r"gt.jsonl:3"):
        read_jsonl(path)


# --- random cases against the loop reference ----------------------------------------------------


def random_case(rng: np.random.Generator, n: int) -> tuple[list[dict], list[dict]]:
    """Windows on the 2-s grid and scores from a few values, so IoU and score ties are common."""
    preds, gts = [], []
    for qid in range(n):
        duration = int(rng.choice([20, 60, 150]))
        # 2k distinct even cut points, paired in order: 1 to 3 disjoint ground-truth windows
        grid = np.arange(0, duration + 1, 2)
        cuts = np.sort(rng.choice(grid, size=2 * rng.integers(1, 4), replace=False))
        windows = cuts.reshape(-1, 2).tolist()
        clip_ids = sorted({c for a, b in windows for c in range(a // 2, b // 2)})
        labels = rng.integers(0, 5, size=(len(clip_ids), 3)).tolist()
        saliency = {"relevant_clip_ids": clip_ids, "saliency_scores": labels}
        gts.append(gt(qid, windows, duration) | saliency)
        # 0 to 12 predictions (some past the end of the video), scores from three values
        starts = rng.choice(np.arange(0, duration + 10, 2), size=int(rng.integers(0, 13)))
        lengths = rng.choice([2, 4, 10, 20, 40], size=len(starts))
        scores = rng.choice([0.1, 0.5, 0.9], size=len(starts))
        windows = [[int(a), int(a + b), float(c)] for a, b, c in zip(starts, lengths, scores)]
        # saliency lists a few clips too short or too long, values from four levels
        n_sal = max(duration // 2 + int(rng.integers(-3, 4)), 1)
        preds.append(pred(qid, windows, rng.choice([0.0, 0.3, 0.6, 1.0], size=n_sal).tolist()))
    return preds, gts


@pytest.mark.parametrize("seed", range(4))
def test_matches_loop_reference_on_random_data(seed: int) -> None:
    preds, gts = random_case(np.random.default_rng(seed), 40)
    result = evaluate_qvhighlights(preds, gts, decimals=None)
    got = flatten({k: v for k, v in result.items() if k != "brief"})
    want = ref_evaluate(preds, gts)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    brief = result["brief"]
    assert brief["MR-full-mAP"] == got["full/MR-mAP/average"]
    assert brief["MR-full-mAP@0.75"] == got["full/MR-mAP/0.75"]
    assert brief["MR-full-R1@0.7"] == got["full/MR-R1/0.7"]
    assert brief["MR-long-mAP"] == got["long/MR-mAP/average"]
    assert brief["HL-min-VeryGood-Hit1"] == got["HL-min-VeryGood/HL-Hit1"]
