import pytest

from ccr import models
from ccr.translate.signals import is_copy, length_ratio, round_trip_similarity


def test_copy_means_same_text_up_to_case_and_spacing():
    assert is_copy("A dog on the beach.", "  a dog  on the BEACH. ")
    assert not is_copy("A dog on the beach.", "Ein Hund am Strand.")


def test_length_ratio_is_pieces_per_piece_and_survives_an_empty_target():
    assert length_ratio(12, 8) == 1.5
    assert length_ratio(5, 0) == 5.0


def test_round_trip_similarity_embeds_each_distinct_text_once():
    from sentence_transformers import SentenceTransformer

    embedder = SentenceTransformer(str(models.resolve("tiny/minilm").path), device="cpu")
    calls = []
    real = embedder.encode
    embedder.encode = lambda texts, **kw: calls.append(list(texts)) or real(texts, **kw)
    sims = round_trip_similarity(embedder, ["A red circle.", "A red circle.", "Two dogs."],
                                 ["A red circle.", "A blue star.", "Two dogs run."])
    assert calls == [["A red circle.", "Two dogs.", "A blue star.", "Two dogs run."]]
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and -1 <= sims[1] < 1 and -1 <= sims[2] < 1
