import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from ccr import models
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.formats.export import export

sys.path.insert(0, str(Path(__file__).parent))
from translate_helpers import run  # noqa: E402

MT_DE = (pl.col("origin") == "mt") & (pl.col("lang") == "de")


def test_mt_rows_get_back_translations_and_rt_sim_and_test_queries_get_english(translated, tmp_path):
    from sentence_transformers import SentenceTransformer

    summary = run("backtranslate", translated, lang="de", test_queries=True)
    captions = Corpus.open(translated).table("captions")
    mt, bt = captions.filter(MT_DE), captions.filter(pl.col("origin") == "bt")
    key = models.resolve("tiny/marian-de-en").key
    assert bt.height == mt.height > 0 and set(bt["parent_id"]) == set(mt["caption_id"])
    assert (bt["caption_id"] == bt["parent_id"] + f"|bt:en:{key}").all()
    assert (bt["lang"] == "en").all() and (bt["model"] == key).all() and (bt["mt_logprob"] < 0).all()
    # rt_sim sits on the MT row (side table captions.backtranslate, joined on the id)
    assert mt["rt_sim"].is_not_null().all() and mt["rt_sim"].is_between(-1, 1).all()
    row = mt.row(0, named=True)
    english = captions.filter(pl.col("caption_id") == row["parent_id"])["text"].item()
    back = bt.filter(pl.col("parent_id") == row["caption_id"])["text"].item()
    embedder = SentenceTransformer(str(models.resolve("tiny/minilm").path), device="cpu")
    a, b = embedder.encode([english, back], normalize_embeddings=True)
    assert row["rt_sim"] == pytest.approx(float(a @ b), abs=1e-5)
    # translate-test queries: human val/test German captions into English
    human_de = captions.filter((pl.col("origin") == "human") & (pl.col("lang") == "de"))
    queries = captions.filter((pl.col("origin") == "mt") & (pl.col("lang") == "en"))
    assert set(queries["parent_id"]) == set(human_de["caption_id"]) and set(queries["split"]) == {"val", "test"}
    assert (queries["caption_id"] == queries["parent_id"] + f"|mt:en:{key}").all()
    assert queries["rt_sim"].is_null().all()
    assert summary.rows_in == mt.height + human_de.height and summary.rows_failed == 0
    assert run("backtranslate", translated, lang="de", test_queries=True).rows_in == 0
    # model keys are file-safe: the NRCCR exporter names its files with them
    names = {p.name for p in export(translated, tmp_path / "nrccr", fmt="nrccr", collection="toy")}
    mt_key = models.resolve("tiny/marian-en-de").key
    assert {f"toytrain_{mt_key}_enc2de.caption.txt", f"toytrain_{key}_enc2de2enc.caption.txt",
            f"toytest_{key}_de2enc.caption.txt"} <= names


def test_a_language_with_two_mt_models_needs_mt_model(translated, tmp_path):
    copy = tmp_path / "my-en-de"
    shutil.copytree(models.resolve("tiny/marian-en-de").path, copy)
    run("translate", translated, lang="de", model=(str(copy),))
    tiny_key, copy_key = models.resolve("tiny/marian-en-de").key, models.resolve(str(copy)).key
    assert copy_key.startswith("my-en-de@") and copy_key != tiny_key
    with pytest.raises(CcrError, match=f"several models made machine-translated de captions: {tiny_key}, {copy_key}; "
                                       "pick one with --mt-model KEY"):
        run("backtranslate", translated, lang="de")
    with pytest.raises(CcrError, match=f"--mt-model 'nope': no machine-translated de captions from it; available: {tiny_key}, "
                                       f"{copy_key}$"):
        run("backtranslate", translated, lang="de", mt_model=("nope",))
    summary = run("backtranslate", translated, lang="de", mt_model=(copy_key,))
    bt = Corpus.open(translated).table("captions").filter(pl.col("origin") == "bt")
    assert summary.rows_in == bt.height > 0 and bt["parent_id"].str.ends_with(f"|mt:de:{copy_key}").all()
    assert Corpus.open(translated).runs()[-1]["models"]["de-en"]["reads_mt_model"] == copy_key


def test_missing_mt_rows_and_a_wrong_embedder_are_clear_errors(translated, tmp_path):
    with pytest.raises(CcrError, match="no machine-translated fr captions; make them first: "
                                       "ccr translate CORPUS --lang fr"):
        run("backtranslate", translated, lang="fr")
    with pytest.raises(CcrError, match="is not a sentence-transformers model \\(no modules.json\\); pass one with "
                                       "--embedder"):
        run("backtranslate", translated, lang="de", embedder=str(models.resolve("tiny/marian-de-en").path))
