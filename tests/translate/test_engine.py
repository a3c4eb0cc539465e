import dataclasses
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ccr import models
from ccr.errors import CcrError
from ccr.testing.tiny_models import training_text
from ccr.translate import engine
from ccr.translate.engine import (
    Decoding,
    MarianTranslator,
    converted,
    resolve_compute_type,
    thread_counts,
)
from ccr.translate.routes import resolve_routes


def test_float32_output_equals_transformers_greedy_and_logprob_is_the_mean_token_logprob():
    """Our tokenize -> CTranslate2 -> detokenize path against MarianTokenizer + generate on the same weights."""
    from transformers import MarianMTModel, MarianTokenizer

    model = models.resolve("tiny/marian-en-de")
    texts = training_text(("en",))[:12]
    steps = 8
    ours = MarianTranslator(model, compute_type="float32", device="cpu").translate(
        texts, Decoding(beam_size=1, max_length=steps, min_length=1, max_input_tokens=512))
    tok = MarianTokenizer.from_pretrained(model.path)
    hf = MarianMTModel.from_pretrained(model.path).eval()
    out = hf.generate(**tok(texts, return_tensors="pt", padding=True), num_beams=1, do_sample=False,
                      max_new_tokens=steps, forced_eos_token_id=None, output_scores=True,
                      return_dict_in_generate=True)
    assert [t.text for t in ours] == tok.batch_decode(out.sequences, skip_special_tokens=True)
    logprobs = hf.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    for t, row in zip(ours, logprobs):
        assert t.target_tokens == steps  # the random model never ends early
        assert t.logprob == pytest.approx(row.mean().item(), abs=1e-3)
        assert t.source_tokens == len(tok(texts[ours.index(t)]).input_ids) - 1  # without </s>


def test_overlong_and_empty_captions_get_reasons_not_truncation():
    translator = MarianTranslator(models.resolve("tiny/marian-en-de"), compute_type="int8", device="cpu")
    decoding = Decoding(beam_size=2, max_length=6, min_length=1, max_input_tokens=12)
    long = " ".join(["a red circle on the left"] * 5)
    short, too_long, empty = translator.translate(["A red circle.", long, "  "], decoding)
    assert short.error is None and short.text and short.logprob < 0
    assert too_long.error.startswith("caption too long: ") and "max_input_tokens=12" in too_long.error
    assert empty.error == "empty caption"
    assert translator.sentences == 1, "only the valid caption reached the decoder"


def test_conversion_is_cached_per_model_revision_and_quantization_and_racers_convert_once(monkeypatch, tmp_path):
    model = models.resolve("tiny/marian-de-en")  # built in the session cache, before the cache moves
    monkeypatch.setenv("CCR_CACHE_DIR", str(tmp_path))
    calls = []
    real = engine._convert

    def slow_convert(*args):
        calls.append(args[2])
        time.sleep(0.3)  # widen the race
        real(*args)

    monkeypatch.setattr(engine, "_convert", slow_convert)
    with ThreadPoolExecutor(3) as pool:
        paths = set(pool.map(lambda _: converted(model, "int8"), range(3)))
    assert len(paths) == 1 and calls == ["int8"]
    path = paths.pop()
    assert path.is_relative_to(tmp_path / "ct2") and (path / "model.bin").exists()
    assert converted(model, "int8") == path and calls == ["int8"]
    assert converted(model, "float32") != path
    assert converted(dataclasses.replace(model, revision="other"), "int8") != path
    assert calls == ["int8", "float32", "int8"]
    # a conversion killed half-way leaves a temporary directory; the next one clears it
    stale = tmp_path / "ct2" / f".tmp-dead-{path.name}"
    stale.mkdir()
    (stale / "model.bin").write_bytes(b"partial")
    for p in path.iterdir():
        p.unlink()
    path.rmdir()
    assert converted(model, "int8") == path and (path / "model.bin").stat().st_size > 100
    assert not stale.exists() and not list((tmp_path / "ct2").glob(".tmp-*"))


def test_threads_follow_the_machine_and_a_schedulers_cap(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    assert thread_counts("cpu") == (2, 1), "two single-thread replicas on 2 cores (stack_notes §2)"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert thread_counts("cpu") == (4, 4)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray sets in a one-CPU actor
    assert thread_counts("cpu") == (1, 1)
    assert thread_counts("cpu", 3, 2) == (3, 2)


def test_routes_check_pairs_models_and_target_tokens(tmp_path):
    with pytest.raises(CcrError, match=r"no default MT model for en->xh; supported pairs: en-de.*--model"):
        resolve_routes([("en", "xh")], tiny=True)
    with pytest.raises(CcrError, match=r"--model some/model is ambiguous with several languages; "
                                       r"write --model LANG=some/model"):
        resolve_routes([("en", "de"), ("en", "fr")], models=["some/model"], tiny=True)
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CcrError, match="is not an OPUS-MT Marian model \\(model_type is 'bert'\\)"):
        resolve_routes([("en", "de")], models=[str(tmp_path / "bert")])
    with pytest.raises(CcrError) as err:
        resolve_routes([("en", "de")])  # the real default: no hub, no cache here
    assert "\n" not in str(err.value) and "Helsinki-NLP/opus-mt-en-de" in str(err.value) and "--model" in str(err.value)
    # the tiny en->zh model is multi-target like the real one: the table's >>cmn_Hans<< applies
    (default,) = resolve_routes([("en", "zh")], tiny=True)
    (traditional,) = resolve_routes([("en", "zh")], prefixes=[">>cmn_Hant<<"], tiny=True)
    assert default.model.prefix == ">>cmn_Hans<<" and default.model.key.endswith("+cmn-Hans")
    assert traditional.model.key.endswith("+cmn-Hant"), "two prefixes of one model make rows with distinct ids"
    with pytest.raises(CcrError, match="--prefix >>yue<< is not a token of tiny/marian-en-zh; its target tokens"):
        resolve_routes([("en", "zh")], prefixes=["zh=>>yue<<"], tiny=True)
    with pytest.raises(CcrError, match="'float16' is not supported on cpu; use auto or one of .*int8"):
        resolve_compute_type("float16", "cpu")
