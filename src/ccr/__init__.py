"""ccr: multilingual pseudo-parallel corpora and one trainer for cross-lingual cross-modal retrieval."""

__version__ = "0.1.0"
