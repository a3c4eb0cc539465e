"""Config dataclass fields as command-line parameters, and what a user typed back as override text.

A field's name, default, help and choices are written once, on the field (``ccr.config.option``);
this module turns them into a typer parameter. Every value goes to ``ccr.config.resolve`` as text,
so parsing and type checks live in one place, whatever layer (TOML, ``--set``, flag) a value comes from.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ccr.config import Choices, flag_of

PREFIX = "field__"  # parameter names of config fields, apart from a command's own parameters


@dataclass(frozen=True)
class FieldOption:
    """One config field as it appears on the command line."""

    name: str  # the field's (and --set's) name
    flag: str  # --mt-model, or the field's declared flag
    kind: str  # flag (a bool), many (a list, tuple or mapping: repeatable) or one
    positional: bool

    @property
    def param(self) -> str:
        return PREFIX + self.name


def _choices(spec: Any) -> list[str]:
    values: Iterable[Any] = spec() if callable(spec) else spec
    return [str(v) for v in values]


def _base(hint: Any) -> Any:
    """``X | None`` -> ``X``: whether an option may be left out says nothing of what it takes."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _kind(hint: Any) -> str:
    base = _base(hint)
    if base is bool:
        return "flag"
    return "many" if typing.get_origin(base) in (list, tuple, dict) else "one"


def _metavar(hint: Any, kind: str) -> str:
    base = _base(hint)
    if typing.get_origin(base) is typing.Literal:
        return "|".join(map(str, typing.get_args(base)))
    if kind == "many":
        return "<list[str]>"
    return f"<{getattr(base, '__name__', 'str')}>"


def _default_text(f: dataclasses.Field[Any]) -> str | None:
    """The default as a user would type it, or None where it means "none" (the help says what then)."""
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        value = f.default
    if value is None or value == "" or value == () or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def help_text(f: dataclasses.Field[Any], hint: Any) -> str:
    """The field's help with its choices: a Literal type's values or declared ``choices`` (the only
    values) and ``known`` ones (examples of an open set)."""
    text = f.metadata.get("help", "")
    base = _base(hint)
    literal = typing.get_origin(base) is typing.Literal
    if "choices" in f.metadata or literal:
        choices = _choices(f.metadata["choices"] if "choices" in f.metadata else typing.get_args(base))
        text += f" (one of: {', '.join(choices)})"
    if "known" in f.metadata:
        text += known_text(f.metadata["known"])
    return text


def known_text(known: Choices) -> str:
    """How every ``--help`` lists examples of an open set (languages with a default model), so
    hand-written options show them as generated ones do."""
    return f" (known: {', '.join(_choices(known))})"


def field_options(cls: type) -> list[tuple[FieldOption, inspect.Parameter]]:
    """Every field of ``cls`` meant for the command line, with the typer parameter that reads it.

    Options default to None (not given), so a flag only overrides what TOML or ``--set`` say when a
    user types it; the help shows the config's own default.
    """
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        hint = hints[f.name]
        kind = _kind(hint)
        positional = bool(f.metadata.get("positional"))
        flag = flag_of(f)
        spec = FieldOption(f.name, flag, kind, positional)
        help_ = help_text(f, hint)
        if positional:
            annotation: Any = Annotated[str, typer.Argument(metavar=f.name.upper(), help=help_, show_default=False)]
            out.append((spec, inspect.Parameter(spec.param, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)))
            continue
        declared = f"{flag}/--no-{flag.removeprefix('--')}" if kind == "flag" else flag
        aliases = [f.metadata["short"]] if "short" in f.metadata else []
        python_type = {"flag": bool | None, "many": list[str] | None, "one": str | None}[kind]
        default = _default_text(f)
        if default is not None:  # the option's own default is None (not given); the config's is shown
            help_ += f" (default: {default})"
        option = typer.Option(declared, *aliases, help=help_, show_default=False,
                              metavar=None if kind == "flag" else _metavar(hint, kind))
        out.append((spec, inspect.Parameter(spec.param, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[python_type, option])))
    return out


def as_text(value: Any) -> str | None:
    """A parsed command-line value as ``resolve`` reads it: repeated values join with commas."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(value) if value else None
    return str(value)


def overrides(values: dict[str, Any]) -> dict[str, str]:
    """The fields a user gave, as text; those not given stay out, so lower layers keep theirs."""
    return {name: text for name, value in values.items() if (text := as_text(value)) is not None}


def collect(specs: Iterable[FieldOption], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the config fields' values out of a command's keyword arguments, by field name."""
    return {spec.name: kwargs.pop(spec.param) for spec in specs}

