"""Cheap, reference-free quality signals of a translation (stack_notes §7 ranks them).

The log-probability comes free with decoding (``engine.Translation.logprob``); these are the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def length_ratio(source_tokens: int, target_tokens: int) -> float:
    """Source pieces per target piece, each under its own side's SentencePiece model.

    Pieces rather than characters, so the ratio does not swing with the script (a Chinese
    caption has a third of the characters of its English source but a similar piece count).
    """
    return source_tokens / max(target_tokens, 1)


def is_copy(source: str, target: str) -> bool:
    """The model passed the source through: a classic failure of MT on names and noise."""
    return " ".join(source.split()).casefold() == " ".join(target.split()).casefold()


def round_trip_similarity(embedder: Any, sources: Sequence[str], back_translations: Sequence[str],
                          batch_size: int = 64) -> list[float]:
    """Cosine between each English source and its back-translation (NRCCR's consistency signal).

    Each distinct text is embedded once; duplicates are common among captions and their round trips.
    """
    texts = list(dict.fromkeys([*sources, *back_translations]))
    vectors = embedder.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)
    index = {t: i for i, t in enumerate(texts)}
    return [float(vectors[index[a]] @ vectors[index[b]]) for a, b in zip(sources, back_translations)]
