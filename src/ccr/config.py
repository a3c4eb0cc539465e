"""Stage and method configs: dataclass defaults, TOML files and ``--set key=value`` overrides.

One mechanism for every stage so that the CLI, the demo and ``ccr pipeline`` resolve configs the
same way, unknown keys are errors (a typo never silently falls back to a default), and the
fingerprint covers exactly the fields that change outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ccr.errors import CcrError
from ccr.paths import read_text

C = TypeVar("C")

Choices = Iterable[str] | Callable[[], Iterable[str]]

RUNTIME = {"fingerprint": False}
"""Field metadata for options that never change outputs (batch size, threads, device, engine)."""


def runtime_field(default: Any = dataclasses.MISSING, help: str = "", *,
                  default_factory: Callable[[], Any] | None = None, cli: bool = True) -> Any:
    """A config field left out of the fingerprint (``option`` with ``runtime=True``)."""
    return option(default, help, factory=default_factory, runtime=True, cli=cli)


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
           runtime: bool = False, choices: Choices | None = None, known: Choices | None = None,
           flag: str | None = None, short: str | None = None, positional: bool = False, cli: bool = True,
           metadata: Mapping[str, Any] | None = None) -> Any:
    """A config field whose help is written once, here: the command line and ``--help`` read it.

    ``choices`` are the only values (a Literal type gives them too); ``known`` are examples of an
    open set (languages with a default model). Either may be a callable, read when the CLI is built.
    ``flag`` names the command-line option where the field's name would mislead (caption's ``mllm``
    is the stage's ``--model``) and ``short`` its one-letter alias (export's ``-f``); ``positional``
    makes it an argument after CORPUS; ``cli=False`` keeps it off the command line (``--set``, TOML
    and recipes still reach it). ``runtime`` leaves it out of the fingerprint, like ``runtime_field``.
    """
    meta: dict[str, Any] = {**(metadata or {}), "help": help, "cli": cli, "positional": positional}
    meta.update({k: v for k, v in (("choices", choices), ("known", known), ("flag", flag), ("short", short))
                 if v is not None})
    if runtime:
        meta.update(RUNTIME)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def flag_of(f: dataclasses.Field[Any]) -> str:
    """A field's command-line option: its declared flag, else its name as ``--kebab-case``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _labels(cls: type) -> dict[str, str]:
    """How a mistake names each field: its key (TOML, ``--set``, recipes) and, where the command line
    has one, its flag, which is what a user who typed ``--beam-size x`` looks for. A field made by
    ``option`` says whether it is a flag; a plain field is one where its class says so (``COMMAND_LINE``:
    ``ccr train``'s options; a method's options are ``--set`` keys only)."""
    flags = getattr(cls, "COMMAND_LINE", False)
    return {f.name: f"{f.name} ({flag_of(f)})" if f.metadata.get("cli", flags) and not f.metadata.get("positional")
            else f.name for f in dataclasses.fields(cls)}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check (and for strings from ``--set``, parse) a value against a field's type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except CcrError as e:
                errors.append(str(e))
        raise CcrError(errors[0] if errors else f"{name}: bad value {value!r}")
    if origin in (list, tuple):
        items = value
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(items, (list, tuple)):
            raise CcrError(f"{name}: expected a list, got {value!r}")
        inner = args[0] if args else str
        out = [_coerce(name, v, inner) for v in items]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise CcrError(f"{name}: expected a table, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise CcrError(f"{name}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise CcrError(f"{name}: expected an integer, got {value!r}")
        try:
            if isinstance(value, str) or isinstance(value, int):
                return int(value)
        except ValueError:
            pass
        raise CcrError(f"{name}: expected an integer, got {value!r}")
    if hint is float:
        try:
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                number = float(value)
                if not math.isfinite(number):  # no option means anything by nan or inf: a typo or a bad sweep
                    raise CcrError(f"{name}: expected a finite number, got {value}")
                return number
        except (ValueError, OverflowError):
            pass
        raise CcrError(f"{name}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise CcrError(f"{name}: expected a string, got {value!r}")
    if typing.get_origin(hint) is typing.Literal:
        if value not in args:
            raise CcrError(f"{name}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    return value


def parse_sets(sets: list[str] | None) -> dict[str, str]:
    """``["beam=4", "lang=de,fr"]`` -> ``{"beam": "4", "lang": "de,fr"}``."""
    out: dict[str, str] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CcrError(f"--set {item!r}: expected key=value, e.g. --set beam_size=4")
        out[key.strip()] = value.strip()
    return out


def load_toml(path: Path | None, section: str | None = None, *, what: str = "config file") -> dict[str, Any]:
    """Read a TOML config; with ``section``, only that table (``[translate]``) if present.

    The path is checked to be a regular file first: ``/dev/zero`` would fill the memory and a FIFO
    would block for ever.
    """
    if path is None:
        return {}
    try:
        data = tomllib.loads(read_text(path, what, not_text="give a TOML file"))
    except tomllib.TOMLDecodeError as e:
        raise CcrError(f"{what} {path} is not valid TOML: {e}") from None
    if section and isinstance(data.get(section), dict):
        return data[section]
    return data


def resolve(cls: type[C], *layers: dict[str, Any]) -> C:
    """Build ``cls`` from its defaults overridden by each layer in turn; unknown keys are errors."""
    types_, labels = _field_types(cls), _labels(cls)
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key not in types_:
                known = ", ".join(sorted(types_))
                raise CcrError(f"unknown option {key!r} for {cls.__name__}; known options: {known}")
            values[key] = _coerce(labels[key], value, types_[key])
    return cls(**values)


def to_dict(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def semantic_dict(cfg: Any) -> dict[str, Any]:
    """The fields that change outputs, i.e. everything not marked ``runtime_field``."""
    full = to_dict(cfg)
    return {f.name: full[f.name] for f in dataclasses.fields(cfg) if f.metadata.get("fingerprint", True)}


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
