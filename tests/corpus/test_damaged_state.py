"""State files ccr wrote and a disk error or a hand edit damaged: one line naming the file and what
to do, never a traceback (a JSON manifest that is no object, a pipeline.json cut short)."""

import pytest
from typer.testing import CliRunner

from ccr.cli import app


def test_a_manifest_that_is_no_json_object(toy_corpus, cli_error):
    manifest = toy_corpus / "manifest.json"
    for text, says in (("[]", "not a JSON object"), ('{"runs": [', "not valid JSON")):
        manifest.write_text(text)
        cli_error(["info", toy_corpus], f"manifest {manifest} is damaged", says, "restore it")


@pytest.mark.parametrize(("text", "says"), [('{"steps": {"ingest": ', "is damaged (not valid JSON"),
                                            ('{"steps": []}', "holds no steps")])
def test_a_damaged_pipeline_state(toy_source, tmp_path, cli_error, text, says):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[pipeline]\nwork_dir = "{tmp_path / "work"}"\n\n'
                      f'[[step]]\nstage = "ingest"\nformat = "jsonl"\nsrc = "{toy_source / "captions.jsonl"}"\n')
    state = tmp_path / "work" / "pipeline.json"
    state.parent.mkdir()
    state.write_text(text)
    cli_error(["pipeline", "run", recipe, "--dry-run"], f"pipeline state {state}", says, "delete it")
    state.unlink()  # what the message says to do
    result = CliRunner().invoke(app, ["pipeline", "run", str(recipe), "--dry-run"])
    assert result.exit_code == 0 and "to do" in result.output, result.output


def test_a_damaged_feature_meta_is_refused_before_an_export_writes_anything(toy_corpus, tmp_path, cli_error):
    meta = toy_corpus / "features" / "imp" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text('{"model": ')
    cli_error(["export", toy_corpus, "--out", tmp_path / "out", "--format", "nrccr", "--features", "imp"],
              f"feature meta {meta} is damaged", "delete it")
    assert not (tmp_path / "out").exists()
