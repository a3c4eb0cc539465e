"""Which model translates which language pair in a run: the table's default, its tiny stand-in, or ``--model``.

Every choice is checked before a corpus row is read: the pair, the model directory, and the
target-language token a multi-target OPUS-MT model needs (stack_notes §7).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccr import languages
from ccr.errors import CcrError
from ccr.models import MT, ResolvedModel, mt_entry, resolve


@dataclass(frozen=True)
class Route:
    """One direction of a run and the model that serves it."""

    src: str
    tgt: str
    model: ResolvedModel

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"

    @property
    def other(self) -> str:
        """The non-English side: what ``--lang``, ``--model de=...`` and ``--prefix`` refer to."""
        return self.tgt if self.src == "en" else self.src


def per_language(values: Sequence[str], langs: Sequence[str], option: str) -> dict[str, str]:
    """``VALUE`` when the run has one language, else ``LANG=VALUE`` for each language it applies to."""
    out: dict[str, str] = {}
    for value in values:
        lang, sep, rest = value.partition("=")
        if sep and languages.is_known(lang):
            if lang not in langs:
                raise CcrError(f"{option} {value}: {lang} is not among this run's languages ({', '.join(langs)})")
            out[lang] = rest
        elif len(langs) == 1:
            out[langs[0]] = value
        else:
            raise CcrError(f"{option} {value} is ambiguous with several languages; write {option} LANG={value}, "
                           f"e.g. {option} {langs[0]}={value}")
    return out


def resolve_routes(pairs: Sequence[tuple[str, str]], *, models: Sequence[str] = (), prefixes: Sequence[str] = (),
                   tiny: bool = False, aliases: dict[str, str] | None = None) -> list[Route]:
    """Resolve and check the model of every (source, target) pair."""
    from ccr.translate.engine import language_tokens

    others = [b if a == "en" else a for a, b in pairs]
    chosen = per_language(models, others, "--model")
    wanted_prefix = per_language(prefixes, others, "--prefix")
    routes = []
    for (src, tgt), other in zip(pairs, others):
        if other in chosen:
            model = resolve(chosen[other], aliases=aliases)
        else:
            entry = mt_entry(src, tgt, tiny=tiny)
            model = resolve(entry.id, revision=entry.revision, aliases=aliases)
        tokens = language_tokens(model)
        default = MT[(src, tgt)].prefix if (src, tgt) in MT else None
        prefix = wanted_prefix.get(other) or (default if default in tokens else None)
        if prefix and prefix not in tokens:
            raise CcrError(f"--prefix {prefix} is not a token of {model.id}"
                           + (f"; its target tokens: {', '.join(sorted(tokens)[:12])}" if tokens
                              else " (a one-target model needs no prefix)"))
        if tokens and not prefix:
            raise CcrError(f"{model.id} translates into several languages and needs a target token; pass e.g. "
                           f"--prefix {other}={sorted(tokens)[0]} (its tokens: {', '.join(sorted(tokens)[:12])})")
        routes.append(Route(src, tgt, dataclasses.replace(model, prefix=prefix)))
    return routes


def provenance(routes: Sequence[Route], reads: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """What the manifest records per route (``reads``: the MT model key whose rows a route translates back);
    ``from_provenance`` loads exactly these models back."""
    return {r.name: {**r.model.provenance(), "prefix": r.model.prefix, "path": str(r.model.path),
                     **({"reads_mt_model": reads[r.other]} if reads else {})} for r in routes}


def from_provenance(records: dict[str, dict[str, Any]]) -> dict[str, ResolvedModel]:
    return {name: ResolvedModel(name=rec["id"], id=rec["id"], path=Path(rec["path"]), revision=rec["revision"],
                                prefix=rec["prefix"]) for name, rec in records.items()}
