"""``copy_corpus``: a whole corpus copied for work that must not land in place."""

from __future__ import annotations

import os

import pytest

from ccr.corpus import copy as corpus_copy
from ccr.corpus.copy import copy_corpus
from ccr.corpus.corpus import STATE, Corpus
from ccr.errors import CcrError


def test_the_copy_shares_shards_leaves_locks_behind_and_records_the_manifest_fields(toy_corpus, tmp_path):
    source = Corpus.open(toy_corpus)
    (source.root / STATE / "locks").mkdir(parents=True, exist_ok=True)
    (source.root / STATE / "locks" / "translate.lock").write_text("")
    (source.root / "captions" / ".tmp-leftover.parquet").write_text("")
    out = tmp_path / "copy"
    copied = copy_corpus(source, out, {"copied_from": "here"})
    assert copied.manifest()["copied_from"] == "here" and "copied_from" not in source.manifest()
    assert copied.table("captions").sort("caption_id").equals(source.table("captions").sort("caption_id"))
    shard = source.files("captions")[0]
    twin = out / shard.relative_to(source.root)
    assert os.stat(twin).st_ino == os.stat(shard).st_ino  # hard-linked, not copied
    assert not (out / STATE / "locks").exists()
    assert not any(p.name.startswith(".tmp") for p in out.rglob("*"))


def test_a_failed_copy_leaves_nothing_at_the_destination(toy_corpus, tmp_path, monkeypatch):
    def broken(src: str, dst: str) -> str:
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(corpus_copy, "_link_or_copy", broken)
    out = tmp_path / "copies" / "copy"
    with pytest.raises(CcrError, match="Permission denied"):
        copy_corpus(Corpus.open(toy_corpus), out)
    assert list(out.parent.iterdir()) == []
