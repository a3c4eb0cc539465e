"""Corpus directory, ingest readers, exporters and the stage runner."""
