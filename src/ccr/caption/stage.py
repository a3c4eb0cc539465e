"""``ccr caption``: MLLM descriptions of every media item into the ``descriptions/`` table.

One row per (media item, prompt): ``description_id = {media_id}|{prompt_id}|{model_key}``, so
descriptions by several models and prompts live side by side. A later run of the same model and
prompt with other generation settings supersedes the earlier rows of those ids
(``ccr.corpus.views.read_descriptions`` keeps the last committed one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ccr.caption import prompts as prompt_table
from ccr.caption.describe import FAMILIES, Describer, Request, family_of, resolve_mllm
from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.views import description_id
from ccr.errors import CcrError
from ccr.stages.device import torch_settings
from ccr.stages.media import Sampling, load_visual
from ccr.stages.media_input import MediaReader, media_input, prefetch
from ccr.stages.media_pool import resolve_workers
from ccr.stages.runner import BatchResult, Plan, Stage


@dataclass
class CaptionConfig:
    mllm: str = option("llava", "the MLLM: a family name, a hub id, a local path or tiny/llava", known=FAMILIES,
                       flag="--model")
    prompts: list[str] = option(help="prompt id, or a set of them (repeatable)", factory=lambda: ["detailed"],
                                choices=lambda: [*prompt_table.PROMPTS, *prompt_table.PROMPT_SETS], flag="--prompt")
    max_new_tokens: int = option(256, "longest description, in tokens")
    num_beams: int = option(1, "beam size; 1 = greedy decoding")
    frames: int = option(4, "frames a video gives the model, sampled at the centres of equal segments")
    modality: str | None = option(None, "only image or only video rows (default: both)", choices=("image", "video"))
    dtype: str = option("auto", "auto = float16 on a GPU, float32 on CPU")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", runtime=True)
    media_root: str | None = option(None, "where media paths are relative to (default: the manifest's)", runtime=True)
    workers: int | None = option(None, "processes that decode media one batch ahead of the model (default: the "
                                       "machine's cores, at most 16; 0 = in the main process)", runtime=True)
    aliases: dict[str, str] = option(help="model name -> local path (the TOML's [models] table)", factory=dict,
                                     runtime=True, cli=False)


def plan(corpus: Corpus, cfg: CaptionConfig) -> Plan:
    chosen = prompt_table.expand(cfg.prompts)
    if cfg.max_new_tokens < 1 or cfg.num_beams < 1 or cfg.frames < 1:
        raise CcrError("max_new_tokens, num_beams and frames must be at least 1 "
                       "(--max-new-tokens, --frames, --set num_beams=N)")
    resolve_workers(cfg.workers)
    model = resolve_mllm(cfg.mllm, cfg.aliases)
    family_of(model)
    _, dtype = torch_settings(cfg.device, cfg.dtype)
    chunks, total = media_input(corpus, cfg.modality)
    return Plan(input_table="media", chunks=chunks, total=total,
                fingerprint_parts={"mllm": model.provenance(), "dtype": dtype,
                                   "prompts": {p.id: p.template for p in chosen}},
                models={"mllm": model.provenance()}, id_of=lambda row: row["media_id"])


@dataclass
class _State:
    describer: Describer
    model_key: str
    prompts: list[prompt_table.Prompt]
    reader: MediaReader  # decodes the next batch in worker processes while the MLLM generates


def setup(corpus: Corpus, cfg: CaptionConfig, plan_: Plan) -> _State:
    device, dtype = torch_settings(cfg.device, cfg.dtype)
    model = resolve_mllm(cfg.mllm, cfg.aliases)
    decode = partial(load_visual, sampling=Sampling(frames=cfg.frames))
    reader = MediaReader(corpus, cfg.media_root, decode, cfg.workers)
    return _State(describer=Describer(model, device=device, dtype=dtype), model_key=model.key,
                  prompts=prompt_table.expand(cfg.prompts), reader=reader)


def process(batch: Sequence[dict[str, Any]], state: _State, cfg: CaptionConfig) -> BatchResult:
    loaded, failures = state.reader.load(batch)
    pairs = [(row, visual, p) for row, visual in loaded for p in state.prompts]
    requests = [Request(visual, p.text(visual.is_video)) for _, visual, p in pairs]
    texts = state.describer.describe(requests, max_new_tokens=cfg.max_new_tokens, num_beams=cfg.num_beams)
    rows = [{"description_id": description_id(row["media_id"], p.id, state.model_key), "media_id": row["media_id"],
             "model": state.model_key, "prompt_id": p.id, "text": text}
            for (row, _, p), text in zip(pairs, texts)]
    return BatchResult(rows={"descriptions": rows}, failures=failures)


STAGE = Stage(name="caption", version="1", config=CaptionConfig, plan=plan, setup=setup, process=process,
              help="MLLM descriptions of every image and video into descriptions/",
              examples=("ccr caption ccr-demo/corpus --frames 4 --models toy",),
              batch_size=8, needs=frozenset({"media"}), provides={"descriptions": "MLLM descriptions"},
              smoke={"mllm": "tiny/llava", "max_new_tokens": 16}, path_options=("media_root",),
              prefetch=prefetch)
