"""The named prompt templates, in one place, so a description row's ``prompt_id`` says exactly what was asked.

``detailed`` is the one long description LECCR builds its slots from (the original's prompt is not
published; this one asks for the same content). The four views ask for one aspect each, for
multi-view slots. ``{media}`` becomes "image" or "video". A template's text enters the caption
stage's fingerprint, so rewording one redoes its descriptions instead of mixing old and new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ccr.errors import CcrError


@dataclass(frozen=True)
class Prompt:
    id: str
    template: str

    def text(self, is_video: bool) -> str:
        return self.template.format(media="video" if is_video else "image")


PROMPTS: dict[str, Prompt] = {p.id: p for p in (
    Prompt("detailed", "Describe this {media} in detail. Mention the main objects and people, what they are doing, "
                       "their colours, sizes and positions, and the setting."),
    Prompt("objects", "List the objects in this {media}, with their colours and where they are."),
    Prompt("actions", "What is happening in this {media}? Describe the actions and movements."),
    Prompt("scene", "Describe the setting of this {media}: the place, the background and the atmosphere."),
    Prompt("attributes", "Describe the visual attributes in this {media}: colours, shapes, sizes and materials."),
)}

# Names for several prompts at once.
PROMPT_SETS: dict[str, tuple[str, ...]] = {"multiview": ("objects", "actions", "scene", "attributes")}


def expand(ids: Sequence[str]) -> list[Prompt]:
    """Prompt ids and set names -> prompts, in order, without repeats; unknown ids are an error."""
    out: dict[str, Prompt] = {}
    for name in ids:
        for pid in PROMPT_SETS.get(name, (name,)):
            if pid not in PROMPTS:
                known = ", ".join([*PROMPTS, *PROMPT_SETS])
                raise CcrError(f"unknown prompt {pid!r}; known prompts: {known}")
            out.setdefault(pid, PROMPTS[pid])
    if not out:
        raise CcrError("no prompt given; pass --prompt detailed (or another prompt id)")
    return list(out.values())
