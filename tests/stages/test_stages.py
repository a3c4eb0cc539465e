import json

import pytest

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.stages import table as stages
from ccr.stages.runner import RunOptions


def test_stage_config_layers_toml_then_sets_then_flags(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"media_id": "a", "split": "train", "lang": "en", "text": "a dog"}) + "\n")
    config = tmp_path / "plan.toml"
    config.write_text(f'[ingest]\nformat = "csv"\nsrc = "{src}"\nmax_chars = 3\n')
    Corpus.open(tmp_path / "corpus", create=True)
    seen = {}
    summary = stages.run("ingest", tmp_path / "corpus", config=config, sets=["max_chars=4"],
                         overrides={"format": "jsonl", "lang": None}, options=RunOptions(progress=False),
                         on_config=lambda name, cfg: seen.update(name=name, cfg=cfg))
    assert seen["name"] == "ingest" and seen["cfg"].format == "jsonl" and seen["cfg"].max_chars == 4
    assert summary.rows_failed == 1  # "a dog" is 5 characters, over max_chars=4
    run = Corpus.open(tmp_path / "corpus").runs()[-1]
    assert run["config"]["max_chars"] == 4 and run["config"]["src"] == str(src)


def test_unknown_stage_and_unknown_option(tmp_path):
    with pytest.raises(CcrError, match="unknown stage 'translat'; stages: .*ingest"):
        stages.get("translat")
    with pytest.raises(CcrError, match="unknown option 'max_char' for IngestConfig"):
        stages.run("ingest", tmp_path, sets=["max_char=3"])
