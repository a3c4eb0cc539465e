"""Which device a stage runs on: one rule for ``--device`` whatever library runs the model.

``auto`` takes a CUDA device when one is visible, else Apple's MPS where the library can use it,
else the CPU; an explicit name is checked against the machine before any model loads, so a typo
or a missing GPU is one line instead of a library's traceback half-way into a run. The caller says
what its library sees (translation asks CTranslate2, whose import is light; the rest ask torch).
"""

from __future__ import annotations

from ccr.errors import CcrError

DTYPES = ("auto", "float32", "float16", "bfloat16")


def resolve_device(choice: str, cuda_count: int, mps: bool | None = None) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (the spelling torch uses, which CTranslate2 splits).

    ``cuda_count``: CUDA devices visible here; ``mps``: whether MPS is available, None where the
    library cannot use it at all.
    """
    names = "auto, cpu, cuda, cuda:N" + (" or mps" if mps is not None else "")
    if choice == "auto":
        return "cuda" if cuda_count > 0 else "mps" if mps else "cpu"
    kind, sep, index = choice.partition(":")
    if choice == "mps" and mps is not None:
        if not mps:
            raise CcrError("--device mps: MPS is not available here; use --device cpu or auto")
        return choice
    if kind == "cpu" and not sep:
        return choice
    if kind != "cuda" or (sep and not index.isdigit()):
        raise CcrError(f"--device {choice!r}: use {names}")
    if cuda_count == 0:
        raise CcrError(f"--device {choice}: no CUDA device is visible here; use --device cpu or auto")
    if index and int(index) >= cuda_count:
        raise CcrError(f"--device {choice}: this machine has {cuda_count} CUDA device{'s' * (cuda_count != 1)} "
                       f"(cuda:0..cuda:{cuda_count - 1}); pick one or use --device cpu")
    return choice


def torch_device(choice: str) -> str:
    """``resolve_device`` with what torch sees."""
    import torch

    return resolve_device(choice, torch.cuda.device_count(), torch.backends.mps.is_available())


def torch_settings(device: str, dtype: str) -> tuple[str, str]:
    """The device and compute dtype of a torch model: ``auto`` dtype is float16 on a GPU, float32 elsewhere."""
    if dtype not in DTYPES:
        raise CcrError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)} (--set dtype=float32)")
    device = torch_device(device)
    if dtype == "auto":
        dtype = "float16" if device.startswith("cuda") else "float32"
    return device, dtype
