"""Recipe checks: every problem of a malformed recipe in one message, before anything runs.

These run no model: a recipe is rejected (or its plan printed with --dry-run) before any stage starts.
"""

from pathlib import Path

from typer.testing import CliRunner

from ccr.cli import app
from ccr.pipeline.recipe import load_recipe
from ccr.testing.standins import write_standins

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

BROKEN = """
[pipeline]
work_dir = "{work}"
data_root = "{data}"
colour = "blue"
models = "huge"

[extras]
x = 1

[[step]]
stage = "ingest"
format = "multi30k"
src = "multi30k/missing/train.en.gz"

[[step]]
stage = "transmogrify"

[[step]]
stage = "backtranslate"
lang = "de"

[[step]]
stage = "translate"
lang = "de"
beam_size = "four"
temperature = 0.7

[[step]]
stage = "train"
id = "run-a"
method = "nrccr"
epochs = 2

[[step]]
stage = "train"
id = "run-a"
method = "no-such-method"

[[step]]
stage = "evaluate"
run = "run-b"

[[step]]
stage = "noise"
corpus = "noisy"

[[step]]
stage = "score"
from = "corpus"
lang = "de"

[[step]]
stage = "info"
corpus = "../elsewhere"

[[step]]
stage = "noise-eval"

[[step]]
stage = "check"
file = "figures.json"
figure = "metrics.sumr"

[[step]]
stage = "export"
format = "xml"
"""


def test_a_malformed_recipe_gets_one_message_listing_every_problem(tmp_path):
    recipe = tmp_path / "broken.toml"
    recipe.write_text(BROKEN.format(work=tmp_path / "work", data=tmp_path / "data"))
    result = CliRunner().invoke(app, ["pipeline", "run", str(recipe), "--set", "nowhere.epochs=3"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    expected = [
        "--set nowhere.epochs: no step has id or stage 'nowhere'",
        "unknown table [extras]",
        "[pipeline] unknown option 'colour'",
        "unknown stage 'transmogrify'",
        "id 'run-a' is used twice",
        "src", "multi30k/missing/train.en.gz does not exist",
        "unknown option 'temperature'",
        "beam_size (--beam-size): expected an integer, got 'four'",
        "unknown method 'no-such-method'",
        "step 'backtranslate' (backtranslate) needs MT captions (translate), which no step before it makes",
        "run 'run-b' is neither a train step before it nor a finished run",
        "[pipeline] models: expected one of random, toy, real, got 'huge'",
        "step 'noise' (noise) writes a new corpus: name the one it reads and the one it writes",
        "step 'score' (score): from = ... is for steps that write a new corpus",
        "corpus = '../elsewhere' must name a corpus of the work directory",
        "step 'noise-eval' (noise-eval) needs planted noise (noise), which no step before it makes",
        "step 'check' (check): give min = ... or max = ...",
        "format (--format): expected one of parquet, jsonl, hf, nrccr, got 'xml'",
    ]
    missing = [fragment for fragment in expected if fragment not in message]
    assert not missing, message
    assert message.count("error:") == 1 and "20 problem(s)" in message
    assert not (tmp_path / "work").exists()  # checked before anything ran


def test_dry_run_shows_the_plan_and_from_until_select_steps(tmp_path):
    data = write_standins(tmp_path / "data", "multi30k")
    args = ["pipeline", "run", str(CONFIGS / "multi30k.toml"), "--data-root", str(data),
            "--work-dir", str(tmp_path / "work"), "--tiny", "--dry-run", "--from", "ingest-val", "--until", "translate",
            "--set", "translate.beam_size=2", "--set", "nrccr-de.model=x"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output  # steps outside --from/--until get structural checks only
    whole = CliRunner().invoke(app, [a for a in args if a not in ("--from", "ingest-val", "--until", "translate")])
    assert whole.exit_code == 2 and "step 'nrccr-de' (train): unknown option 'model'" in " ".join(whole.output.split())
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.strip()[:1].isdigit()}
    assert "to do" in lines["features"] and "model=tiny/clip" in lines["features"]
    assert "beam_size=2" in lines["translate"] and "tiny=True" in lines["translate"]
    assert "not selected" in lines["ingest-train"] and "not selected" in lines["nrccr-de"]
    assert not (tmp_path / "work").exists()
    late = CliRunner().invoke(app, args[:8] + ["--from", "translate"])  # nothing has run: translate has no input
    assert late.exit_code == 2
    assert "needs captions (ingest), which no step before it makes and the corpus does not have yet; start " \
           "earlier than --from translate" in " ".join(late.output.split())


def test_set_wins_over_tiny_and_values_are_typed(tmp_path):
    data = write_standins(tmp_path / "data", "multi30k")
    recipe = load_recipe(CONFIGS / "multi30k.toml", sets=["train.epochs=3", "pipeline.chunk_rows=16"],
                         pipeline={"data_root": str(data), "work_dir": str(tmp_path / "w"), "tiny": True})
    from ccr.pipeline.orchestrate import effective_options

    train = {s.id: effective_options(recipe, s) for s in recipe.steps if s.stage == "train"}
    assert train["nrccr-de"]["epochs"] == 3 and train["baseline-cs"]["epochs"] == 3  # --set beats --tiny's 1
    assert train["nrccr-de"]["text_tower"] == "tiny/bert" and train["nrccr-de"]["lang"] == ["de"]
    assert recipe.settings.chunk_rows == 16 and recipe.corpus == tmp_path / "w" / "corpus"
    assert recipe.settings.models == "random"  # tiny is the old spelling of models = "random"


NOISY = """
[pipeline]
data_root = "{data}"
work_dir = "{work}"

[[step]]
stage = "ingest"
format = "jsonl"
src = "captions.jsonl"

[[step]]
stage = "translate"
lang = "de"

[[step]]
stage = "features"

[[step]]
stage = "noise"
from = "corpus"
corpus = "noisy"

[[step]]
stage = "score"
corpus = "noisy"
lang = "de"

[[step]]
stage = "noise-eval"
corpus = "noisy"
"""


def test_a_noise_step_copies_into_a_named_corpus_whose_steps_are_checked_on_it(tmp_path, toy_source):
    recipe = tmp_path / "noisy.toml"
    recipe.write_text(NOISY.format(data=toy_source, work=tmp_path / "work"))
    args = ["pipeline", "run", str(recipe), "--models", "random", "--dry-run"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.strip()[:1].isdigit()}
    assert "from=corpus, corpus=noisy" in lines["noise"] and "corpus=noisy" in lines["score"]
    late = CliRunner().invoke(app, [*args, "--from", "score"])  # nothing has run: the copy does not exist
    assert late.exit_code == 2
    assert "step 'score' (score) needs MT captions (translate) in corpus 'noisy'" in " ".join(late.output.split())


CHECKS = """
[pipeline]
work_dir = "{work}"

[[step]]
stage = "check"
file = "figures.json"
figure = "metrics.sumr"
min = 100
max = 600
"""


def test_a_check_passes_is_skipped_once_done_and_a_failed_one_fails_the_run_in_one_line(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "figures.json").write_text('{"metrics": {"sumr": 250.5}}')
    recipe = tmp_path / "checks.toml"
    recipe.write_text(CHECKS.format(work=work))
    first = CliRunner().invoke(app, ["pipeline", "run", str(recipe)])
    assert first.exit_code == 0, first.output
    assert "check: metrics.sumr = 250.5, at least 100 and at most 600" in first.output
    again = CliRunner().invoke(app, ["pipeline", "run", str(recipe)])
    assert "check: done before" in again.output and "0 steps ran" in " ".join(again.output.split())
    for override, says in (("check.max=200", f"check failed: metrics.sumr in {work / 'figures.json'} is 250.5, "
                                             "above the maximum 200"),
                           ("check.figure=metrics.r1", "has no metrics.r1: metrics holds sumr")):
        failed = CliRunner().invoke(app, ["pipeline", "run", str(recipe), "--set", override])
        assert failed.exit_code == 2, failed.output
        error = [line for line in failed.output.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and says in error[0], failed.output
