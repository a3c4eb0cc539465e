"""Options whose meaning changed with their name, and how runs made before the change are read.

``translate_test`` and ``val_translate_test`` used to give the NATIVE queries' share of translate-test
fusion. NRCCR's released code weighs the other side: validation scores ``sim_ratio * (xx->en MT
query) + (1 - sim_ratio) * native`` with ``sim_ratio = 0.2`` (reference/ccr_methods.md §1.4), so
our NRCCR default of 0.2 picked checkpoints 80% on the translated queries. The options now give the
translated share (``translate_test_weight``, ``val_translate_test_weight``, ``--translate-test-weight``).
An old name is refused with a one-line hint rather than read under either meaning, so a script, TOML
file or recipe written for the old meaning cannot silently invert.

A run directory made before the rename records ``val_translate_test`` in ``run.json`` and its
checkpoints. Loading it for evaluation converts the value exactly (``1 - X``: the share the run really
gave its translated queries) and says so, since evaluation does not depend on it; resuming it is
refused unless the command keeps that mix (see ``check_resume``), because checkpoint selection would
otherwise change its criterion half-way.

``num_workers`` became ``workers`` when its default became "sized to the machine"; its meaning stayed,
so a recorded value is read under the new name, and the old name in a TOML file or ``--set`` is
refused with the new one.
"""

from __future__ import annotations

from typing import Any

from ccr.errors import CcrError

RENAMED = {"val_translate_test": "val_translate_test_weight", "translate_test": "translate_test_weight"}
SAME_MEANING = {"num_workers": "workers"}  # renamed, meaning kept


def renamed_hint(key: str, *, flag: bool = False) -> str | None:
    """The one-line refusal for an old option name (``flag``: spelt as a command-line option), else None."""
    new = RENAMED.get(key) or SAME_MEANING.get(key)
    if new is None:
        return None
    old_name, new_name = (f"--{key.replace('_', '-')}", f"--{new.replace('_', '-')}") if flag else (key, new)
    if key in SAME_MEANING:
        return f"{old_name} was renamed {new_name}"
    return (f"{old_name} was renamed {new_name} and its meaning turned round: it gave the native queries' share, "
            f"{new_name} gives the weight of the xx->en MT queries (old X = new 1-X; NRCCR validates at 0.2)")


def _flip(value: float | None) -> float | None:
    return None if value is None else round(1.0 - float(value), 12)


def recorded_val_weight(train: dict[str, Any]) -> float | None:
    """The xx->en MT queries' weight a recorded ``train`` config validated with, in today's meaning."""
    if "val_translate_test" in train:
        return _flip(train["val_translate_test"])
    return train.get("val_translate_test_weight")


def upgrade_train_config(train: dict[str, Any]) -> dict[str, Any]:
    """A recorded ``train`` config (run.json, checkpoint) in today's names, its meaning kept."""
    new = {SAME_MEANING.get(k, k): v for k, v in train.items() if k != "val_translate_test"}
    if "val_translate_test" in train:
        new["val_translate_test_weight"] = recorded_val_weight(train)
    return new


def upgrade_note(run: Any, train: dict[str, Any]) -> str | None:
    """What loading an old run converted, for the log; None when nothing of meaning changed."""
    if train.get("val_translate_test") is None:
        return None
    return (f"{run} was made before val_translate_test was renamed: its val_translate_test="
            f"{train['val_translate_test']} (the native share) is read as val_translate_test_weight="
            f"{recorded_val_weight(train):g} (the xx->en MT share it validated with)")


def check_resume(run: Any, recorded: dict[str, Any], weight: float | None) -> None:
    """Refuse to resume an old run under a validation mix other than the one it selected checkpoints with."""
    if "val_translate_test" not in recorded:
        return
    before = recorded_val_weight(recorded)
    if abs((before or 0.0) - (weight or 0.0)) < 1e-9:  # none and 0 both mean native queries only
        return
    keep = "none" if before is None else f"{before:g}"
    raise CcrError(f"{run} was validated with the old val_translate_test={recorded['val_translate_test']} (native "
                   f"share), i.e. val_translate_test_weight={keep}; resume it with --set val_translate_test_weight="
                   f"{keep} to keep its checkpoint selection, or retrain it with --fresh")
