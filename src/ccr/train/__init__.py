"""Training and evaluation: the trainer core, its methods, retrieval metrics.

Importing this package is free of torch; ``load`` imports it when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(run_dir: Path | str, **kwargs: Any) -> Any:
    """A trained run with ``encode_text(list[str])`` and ``encode_media(ids or features)``; see ``ccr.train.api``."""
    from ccr.train.api import load as _load

    return _load(run_dir, **kwargs)
