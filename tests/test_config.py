import re
from dataclasses import dataclass
from typing import ClassVar

import pytest

from ccr.config import (
    fingerprint,
    load_toml,
    option,
    parse_sets,
    resolve,
    runtime_field,
    semantic_dict,
)
from ccr.errors import CcrError


@dataclass
class Cfg:
    beam_size: int = 4  # beams
    langs: list[str] | None = None  # targets
    compute_type: str = "auto"  # int8 on CPU
    temperature: float = 1.0  # sampling temperature
    greedy: bool = False  # decoding mode
    weights: list[float] | None = None  # per-view weights
    batch_size: int = runtime_field(32)  # does not change outputs


def test_layers_override_defaults_in_order_and_parse_strings(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[translate]\nbeam_size = 2\nlangs = ["de"]\n')
    cfg = resolve(Cfg, load_toml(toml, "translate"), parse_sets(["beam_size=5", "langs=de,fr", "greedy=true",
                                                                  "temperature=0.5"]))
    assert cfg == Cfg(beam_size=5, langs=["de", "fr"], greedy=True, temperature=0.5)


def test_unknown_key_is_an_error_listing_known_ones():
    with pytest.raises(CcrError, match="unknown option 'beam'.*beam_size"):
        resolve(Cfg, {"beam": 4})


@pytest.mark.parametrize("sets, message", [
    (["beam_size=four"], "beam_size: expected an integer"),
    (["greedy=maybe"], "greedy: expected true/false"),
    (["temperature=hot"], "temperature: expected a number"),
    (["novalue"], "expected key=value"),
])
def test_bad_values_are_type_checked(sets, message):
    with pytest.raises(CcrError, match=message):
        resolve(Cfg, parse_sets(sets))


@dataclass
class Flagged:
    beam_size: int = option(4, "beams")
    mt_model: str = option("google", "model key", flag="--mt-key")
    src: str = option("", "the source", positional=True)
    hidden: int = option(1, "no flag", cli=False)


@dataclass
class Trained:
    COMMAND_LINE: ClassVar[bool] = True
    epochs: int = 3


@pytest.mark.parametrize(("cls", "layer", "message"), [
    (Flagged, {"beam_size": "x"}, "beam_size (--beam-size): expected an integer, got 'x'"),
    (Flagged, {"mt_model": 3}, "mt_model (--mt-key): expected a string, got 3"),
    (Flagged, {"src": 3}, "src: expected a string"),  # an argument, not a flag
    (Flagged, {"hidden": "x"}, "hidden: expected an integer"),  # --set and TOML only
    (Trained, {"epochs": "x"}, "epochs (--epochs): expected an integer"),  # plain fields of a command's class
    (Cfg, {"beam_size": "x"}, "beam_size: expected an integer"),  # a method's options: --set keys only
])
def test_a_bad_value_names_the_key_and_the_flag_where_the_command_line_has_one(cls, layer, message):
    with pytest.raises(CcrError, match=re.escape(message)):
        resolve(cls, layer)


def test_fingerprint_ignores_runtime_fields_but_not_semantic_ones():
    base = fingerprint("s", semantic_dict(Cfg()))
    assert fingerprint("s", semantic_dict(Cfg(batch_size=1))) == base
    assert fingerprint("s", semantic_dict(Cfg(beam_size=1))) != base


def test_missing_and_invalid_toml(tmp_path):
    with pytest.raises(CcrError, match="does not exist"):
        load_toml(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("beam_size = = 3")
    with pytest.raises(CcrError, match="not valid TOML"):
        load_toml(bad)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_numbers_are_refused_naming_key_and_value(value):
    with pytest.raises(CcrError, match=re.escape(f"temperature: expected a finite number, got {value}")) as e:
        resolve(Cfg, parse_sets([f"temperature={value}"]))
    assert "\n" not in str(e.value)


def test_non_finite_numbers_in_a_toml_file_or_a_list_are_refused(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("temperature = nan\n")
    with pytest.raises(CcrError, match="temperature: expected a finite number, got nan"):
        resolve(Cfg, load_toml(toml))
    with pytest.raises(CcrError, match="weights: expected a finite number, got -inf"):
        resolve(Cfg, parse_sets(["weights=0.5,-inf"]))
    assert resolve(Cfg, parse_sets(["weights=0.5,2"])).weights == [0.5, 2.0]


def test_a_config_path_that_is_no_toml_file_is_one_line_naming_it(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    for path, message in ((tmp_path, "is a directory"), (binary, "is not UTF-8 text")):
        with pytest.raises(CcrError, match=f"config file {re.escape(str(path))} {message}") as e:
            load_toml(path)
        assert "\n" not in str(e.value)
