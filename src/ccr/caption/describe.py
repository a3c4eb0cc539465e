"""LLaVA-family describers: one loader and one batched, greedy generate for every family.

Families are told apart by the checkpoint's ``model_type``, never by its name, so any compatible
hub id or local path works. LLaVA-OneVision and LLaVA-NeXT-Video take a video's frames as a video;
the image-only families (LLaVA-1.5, LLaVA-NeXT) take them as several images in one turn. Prompts are
left-padded, so a batched row equals the row generated alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ccr import models
from ccr.errors import CcrError
from ccr.stages.media import Visual

FAMILIES = ("llava", "llava_next", "llava_onevision", "llava_next_video")
VIDEO_FAMILIES = ("llava_onevision", "llava_next_video")


def resolve_mllm(name: str, aliases: dict[str, str] | None = None) -> models.ResolvedModel:
    """A family key of the model table (``llava`` = LLaVA-1.5 7B, ...), or any name the resolver takes."""
    return models.resolve_role(name, aliases, option="--model")


def family_of(model: models.ResolvedModel) -> str:
    """The checkpoint's LLaVA family, or an error naming the model when it is not one."""
    from transformers import AutoConfig

    family = AutoConfig.from_pretrained(model.path).model_type
    if family not in FAMILIES:
        raise CcrError(f"{model.id} is a {family} model; ccr caption needs a LLaVA-family model "
                       f"({', '.join(FAMILIES)}): pass --model llava or a compatible id or path")
    return family


@dataclass(frozen=True)
class Request:
    visual: Visual
    prompt: str  # the prompt's text, already worded for an image or a video


class Describer:
    """A loaded LLaVA-family model and its processor."""

    def __init__(self, model: models.ResolvedModel, *, device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.family = family_of(model)
        self.device = device
        self.dtype = getattr(torch, dtype)
        self.processor = AutoProcessor.from_pretrained(model.path)
        self.processor.tokenizer.padding_side = "left"
        self.model = AutoModelForImageTextToText.from_pretrained(model.path, dtype=self.dtype).to(device).eval()

    def describe(self, requests: Sequence[Request], *, max_new_tokens: int, num_beams: int = 1) -> list[str]:
        """One text per request, in order; images and videos are generated apart to keep padding short."""
        texts: list[str] = [""] * len(requests)
        for is_video in (False, True):
            picked = [i for i, r in enumerate(requests) if r.visual.is_video == is_video]
            if picked:
                outs = self._generate([requests[i] for i in picked], max_new_tokens, num_beams)
                for i, text in zip(picked, outs):
                    texts[i] = text
        return texts

    def _turn(self, request: Request) -> tuple[str, list[Any], list[Any]]:
        """Chat text, images and videos of one request."""
        import numpy as np

        visual = request.visual
        if visual.is_video and self.family in VIDEO_FAMILIES:
            slots, images, videos = [{"type": "video"}], [], [np.stack([np.asarray(f) for f in visual.frames])]
        else:
            slots, images, videos = [{"type": "image"}] * len(visual.frames), list(visual.frames), []
        message = [{"role": "user", "content": [*slots, {"type": "text", "text": request.prompt}]}]
        return self.processor.apply_chat_template(message, add_generation_prompt=True), images, videos

    def _generate(self, requests: Sequence[Request], max_new_tokens: int, num_beams: int) -> list[str]:
        import torch

        texts, images, videos = [], [], []
        for request in requests:
            text, imgs, vids = self._turn(request)
            texts.append(text)
            images += imgs
            videos += vids
        inputs = self.processor(text=texts, images=images or None, videos=videos or None, padding=True,
                                return_tensors="pt").to(self.device, dtype=self.dtype)
        pad = self.processor.tokenizer.pad_token_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=num_beams,
                                      **({"pad_token_id": pad} if pad is not None else {}))
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]
