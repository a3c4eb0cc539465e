"""Marian models through CTranslate2: a conversion cache and a translator that takes and returns text.

Converting needs torch and transformers (seconds to import); translating needs only ctranslate2
and sentencepiece. So a model is converted once per (id, revision, quantization) into the cache
and every later run, and every Ray actor, loads the converted copy without the heavy imports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ccr.corpus.locks import exclusive
from ccr.errors import CcrError
from ccr.models import ResolvedModel, cache_dir, quiet_loading, slug
from ccr.stages.device import resolve_device

AUTO = "auto"
EOS = "</s>"
_SPECIAL = frozenset({EOS, "<unk>", "<pad>", "<s>"})
_MAX_REPLICAS = 4  # beyond this many cores, a replica gets several threads rather than more replicas


@dataclass(frozen=True)
class Decoding:
    """How to decode; all but ``max_input_tokens`` (which only decides what fails) enter the fingerprint."""

    beam_size: int
    max_length: int  # most target tokens
    min_length: int  # fewest target tokens (benchmarks force a fixed length with min = max)
    max_input_tokens: int  # longer sources are refused, never silently truncated


@dataclass(frozen=True)
class Translation:
    """One sentence's output, or the reason it has none."""

    text: str = ""
    logprob: float = 0.0  # CTranslate2's score with length penalty 1: mean log-probability per target token
    source_tokens: int = 0
    target_tokens: int = 0
    error: str | None = None


def ct2_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` as CTranslate2 sees the machine (torch spells them alike, so the
    embedder can share the answer); CTranslate2 has no MPS."""
    import ctranslate2

    return resolve_device(device, ctranslate2.get_cuda_device_count())


def resolve_compute_type(compute_type: str, device: str) -> str:
    """``auto`` is int8 on CPU (stack_notes §2: CTranslate2 float32 is no faster than torch there)."""
    import ctranslate2

    kind = device.partition(":")[0]
    if compute_type == AUTO:
        return "int8_float16" if kind == "cuda" else "int8"
    supported = sorted(ctranslate2.get_supported_compute_types(kind))
    if compute_type not in supported:
        raise CcrError(f"--compute-type {compute_type!r} is not supported on {device}; use auto or one of "
                       f"{', '.join(supported)}")
    return compute_type


def thread_counts(device: str, inter_threads: int = 0, intra_threads: int = 0) -> tuple[int, int]:
    """(replicas, threads per replica); 0 means "from the machine".

    On a 2-core CPU two single-threaded replicas beat one two-threaded one by 1.6x (stack_notes §2),
    so small machines get one replica per core. A scheduler's OMP_NUM_THREADS (Ray sets it per
    actor) caps the cores, so actors sharing a node do not oversubscribe it.
    """
    if device.startswith("cuda"):
        return inter_threads or 1, intra_threads or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(omp) if omp.isdigit() and int(omp) > 0 else len(os.sched_getaffinity(0))
    inter = inter_threads or min(cores, _MAX_REPLICAS)
    return inter, intra_threads or max(1, cores // inter)


def language_tokens(model: ResolvedModel) -> set[str]:
    """The ``>>xx<<`` target tokens of a multi-target model (empty for a one-target model).

    Also checks that the directory is an OPUS-MT Marian model, so a wrong ``--model`` fails
    before any corpus is read.
    """
    config = model.path / "config.json"
    kind = json.loads(config.read_text(encoding="utf-8")).get("model_type") if config.exists() else None
    missing = [f for f in ("source.spm", "target.spm", "vocab.json") if not (model.path / f).exists()]
    if kind != "marian" or missing:
        why = f"model_type is {kind!r}" if kind != "marian" else f"{', '.join(missing)} missing"
        raise CcrError(f"{model.id} is not an OPUS-MT Marian model ({why}); pass a Marian model with --model")
    vocab = json.loads((model.path / "vocab.json").read_text(encoding="utf-8"))
    return {t for t in vocab if t.startswith(">>") and t.endswith("<<")}


def converted(model: ResolvedModel, quantization: str) -> Path:
    """The CTranslate2 copy of ``model``, converted on first use; safe when several processes race."""
    import ctranslate2

    digest = hashlib.sha256("\0".join(
        [model.id, model.revision, quantization, ctranslate2.__version__.split(".")[0]]).encode()).hexdigest()[:16]
    root = cache_dir() / "ct2"
    out = root / f"{slug(Path(model.id).name)}-{quantization}-{digest}"
    if out.is_dir():
        return out
    with exclusive(root / f"{out.name}.lock"):
        if out.is_dir():
            return out
        for stale in root.glob(f".tmp-*-{out.name}"):  # left by a converter that was killed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".tmp-{uuid.uuid4().hex}-{out.name}"
        try:
            _convert(model, tmp, quantization)
            os.rename(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _convert(model: ResolvedModel, dest: Path, quantization: str) -> None:
    from ctranslate2.converters import TransformersConverter

    try:
        with quiet_loading():
            TransformersConverter(str(model.path)).convert(str(dest), quantization=quantization, force=True)
    except Exception as e:  # noqa: BLE001 - any converter failure means the same fix
        raise CcrError(f"cannot convert {model.id} to CTranslate2 ({type(e).__name__}: {e}); "
                       "check that it is a complete Marian model directory") from None
    for path in dest.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


class MarianTranslator:
    """One loaded model: SentencePiece on both sides, CTranslate2 in between.

    A whole batch is tokenized in one SentencePiece call (about 17 ms per 1,000 captions, so not
    worth overlapping with decoding) and handed to CTranslate2 in one call, which cuts it into
    token-budget sub-batches and decodes them on all replicas at once. The budget grows with the
    beam: many small sub-batches keep the replicas evenly busy when greedy, while beam search wants
    larger ones. On this project's 2-core machine 512 source tokens (about 33 captions) was the
    fastest greedy budget (2048 was 20% slower) and 2048 the fastest at beam 4 (512 was 10% slower).
    """

    def __init__(self, model: ResolvedModel, *, compute_type: str, device: str = AUTO, inter_threads: int = 0,
                 intra_threads: int = 0, max_batch_tokens: int = 512):
        import ctranslate2
        import sentencepiece as spm

        self.device = ct2_device(device)
        self.compute_type = resolve_compute_type(compute_type, self.device)
        inter, intra = thread_counts(self.device, inter_threads, intra_threads)
        kind, _, index = self.device.partition(":")
        self.translator = ctranslate2.Translator(str(converted(model, self.compute_type)), device=kind,
                                                 device_index=int(index or 0), compute_type=self.compute_type,
                                                 inter_threads=inter, intra_threads=intra)
        self.source = spm.SentencePieceProcessor(model_file=str(model.path / "source.spm"))
        self.target = spm.SentencePieceProcessor(model_file=str(model.path / "target.spm"))
        self.prefix = [model.prefix] if model.prefix else []
        self.max_batch_tokens = max_batch_tokens
        self.sentences = 0  # sentences sent to the decoder so far

    def translate(self, texts: Sequence[str], decoding: Decoding) -> list[Translation]:
        """Translations in input order; empty or over-long sources get an ``error`` instead."""
        pieces = self.source.encode(list(texts), out_type=str)
        out: list[Translation] = [Translation() for _ in texts]
        todo = []
        for i, (text, p) in enumerate(zip(texts, pieces)):
            if not text or not text.strip():
                out[i] = Translation(error="empty caption")
            elif len(p) > decoding.max_input_tokens:
                out[i] = Translation(error=f"caption too long: {len(p)} tokens, over max_input_tokens="
                                           f"{decoding.max_input_tokens} (rerun with --set max_input_tokens=N "
                                           "--retry-failed)")
            else:
                todo.append(i)
        if not todo:
            return out
        results = self.translator.translate_batch(
            [self.prefix + pieces[i] + [EOS] for i in todo], batch_type="tokens",
            max_batch_size=self.max_batch_tokens * decoding.beam_size, beam_size=decoding.beam_size,
            max_decoding_length=decoding.max_length, min_decoding_length=decoding.min_length, max_input_length=0,
            return_scores=True)
        self.sentences += len(todo)
        words = self.target.decode([[t for t in r.hypotheses[0] if t not in _SPECIAL] for r in results])
        for i, result, text in zip(todo, results, words):
            text = text.replace("\u2581", " ").strip()
            out[i] = Translation(text, result.scores[0], len(pieces[i]), len(result.hypotheses[0])) if text else \
                Translation(error="empty translation: the model produced no text")
        return out
