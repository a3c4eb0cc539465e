"""The old import path of the corpus, kept for scripts written before the move to ``ccr.corpus``.

The README once documented ``from ccr.pipeline.corpus import Corpus``; the corpus contract now lives
in ``ccr.corpus.corpus`` and this module only re-exports what the old one offered, so such scripts
keep working. New code imports from ``ccr.corpus.corpus``.
"""

from ccr.corpus.corpus import (
    MANIFEST,
    STATE,
    Commit,
    Corpus,
    join_side,
    package_versions,
    pl_len,
    scan_shard,
)

__all__ = ["MANIFEST", "STATE", "Commit", "Corpus", "join_side", "package_versions", "pl_len", "scan_shard"]
