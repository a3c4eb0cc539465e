"""RIVRL's concept labels: weak multi-label targets for the concept spaces, mined from the captions.

reference/video_methods.md §1.2 "Concepts". A word labels a video when it occurs at least
``min_count`` times across that video's captions (RIVRL: more than once; TGIF, with 1-3 captions
per video: ``min_count`` 1). The vocabulary is the ``size`` labels with the highest total count
(RIVRL: 512); a video's target is each label's count over its largest label count.

The original keeps nouns, verbs and adjectives (NLTK POS tags), lemmatised with WordNet, minus
stop words. Tagging and lemmatising need NLTK's models, which an offline machine lacks, so here a
word is any lower-cased alphabetic token that is not a function word (``STOPWORDS``): articles,
pronouns, prepositions, conjunctions, auxiliaries and the like, the words a POS filter drops
most often. Inflected forms stay apart ("dog", "dogs").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

WORD = re.compile(r"[a-z]+")
STOPWORDS = frozenset("""
a an the this that these those some any each every all both no another other such
i me my we us our you your he him his she her it its they them their there here
is are was were be been being am do does did doing have has had having will would shall should
can could may might must
and or but nor so yet if then than as because while when where who whom whose which what how why
of in on at by for with from to into onto upon over under above below up down out off about
against between through during before after around near along across behind beside
not very just also too only again still really quite
one two three
""".split())


def caption_words(text: str) -> list[str]:
    """The candidate label words of a caption, in order (see the module notes)."""
    return [w for w in WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


def concept_targets(captions: Sequence[Sequence[str]], *, size: int,
                    min_count: int = 2) -> tuple[list[str], np.ndarray]:
    """``(vocabulary, targets)``: the ``size`` concept words, and ``(n_items, size)`` soft targets.

    ``captions[i]`` holds item i's captions. Ties in the vocabulary ranking go to the
    alphabetically first word, so the vocabulary is a function of the captions alone.
    """
    labels: list[Counter[str]] = []
    totals: Counter[str] = Counter()
    for texts in captions:
        counts = Counter(w for text in texts for w in caption_words(text))
        kept = Counter({w: c for w, c in counts.items() if c >= min_count})
        labels.append(kept)
        totals.update(kept)
    vocabulary = [w for w, _ in sorted(totals.items(), key=lambda wc: (-wc[1], wc[0]))[:size]]
    column = {w: j for j, w in enumerate(vocabulary)}
    targets = np.zeros((len(captions), size), dtype=np.float32)
    for i, kept in enumerate(labels):
        if kept:
            top = max(kept.values())
            for w, c in kept.items():
                if w in column:
                    targets[i, column[w]] = c / top
    return vocabulary, targets
