"""Media decoding moved to ``ccr.stages.media`` (every stage, the trainer and the report share it);
these names stay importable from here only until ``ccr.train`` imports them from there."""

from ccr.stages.media import MediaError, Sampling, load_visual

__all__ = ["MediaError", "Sampling", "load_visual"]
