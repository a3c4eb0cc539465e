"""The source fingerprint: a large file is hashed in pieces on threads, and still any byte counts."""

from __future__ import annotations

import hashlib

from ccr.formats.ingest import source


def test_a_file_of_one_piece_hashes_as_one_stream(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"media_id": "m", "text": "a dog"}\n' * 10)
    whole = hashlib.sha256(b"c.jsonl" + path.read_bytes()).hexdigest()[:16]
    assert source.fingerprint(path) == whole


def test_every_piece_of_a_large_file_counts_and_the_hash_is_stable(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "HASH_PIECE", 16)
    path = tmp_path / "c.jsonl"
    data = bytes(range(100))
    path.write_bytes(data)
    first = source.fingerprint(path)
    assert source.fingerprint(path) == first
    seen = {first}
    for at in (0, 20, 99):  # a byte in the first, a middle and the last (short) piece
        changed = bytearray(data)
        changed[at] ^= 1
        path.write_bytes(bytes(changed))
        seen.add(source.fingerprint(path))
    assert len(seen) == 4
