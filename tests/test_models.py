import pytest

from ccr import models
from ccr.errors import CcrError


def test_tiny_models_are_built_once_into_the_cache_and_resolved_like_local_paths(ccr_cache):
    first = models.resolve("tiny/bert")
    assert first.path.is_relative_to(ccr_cache) and (first.path / "config.json").exists()
    stamp = (first.path / "config.json").stat().st_mtime_ns
    second = models.resolve("tiny/bert")
    assert second.path == first.path and (second.path / "config.json").stat().st_mtime_ns == stamp
    assert first.revision == f"tiny-v{models.TINY_VERSION}" and first.key.startswith("bert@")


def test_local_directories_get_a_content_revision(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"a": 1}')
    one = models.resolve(str(tmp_path / "m"))
    (tmp_path / "m" / "config.json").write_text('{"a": 2}')
    two = models.resolve(str(tmp_path / "m"))
    assert one.revision.startswith("local-") and one.revision != two.revision


def test_unreachable_hub_is_one_line_naming_the_model_and_the_fix():
    with pytest.raises(CcrError) as err:
        models.resolve("Helsinki-NLP/opus-mt-en-de")
    message = str(err.value)
    assert "\n" not in message
    assert "Helsinki-NLP/opus-mt-en-de" in message and "--model /path/to/it" in message
    with pytest.raises(CcrError, match=r"bert-base-multilingual-cased: .* pass --set text_tower=/path/to/it"):
        models.resolve_role("text-tower", option="--set text_tower=")  # a role, named by the option that sets it


def test_bundled_minilm_resolves_offline():
    resolved = models.resolve_entry(models.role_entry("embedder"))
    assert (resolved.path / "modules.json").exists()


def test_aliases_map_names_to_local_paths(tmp_path):
    (tmp_path / "mt").mkdir()
    resolved = models.resolve("Helsinki-NLP/opus-mt-en-de", aliases={"Helsinki-NLP/opus-mt-en-de": str(tmp_path / "mt")})
    assert resolved.path == (tmp_path / "mt").resolve()


def test_unknown_pairs_and_paths_are_clear_errors(tmp_path):
    with pytest.raises(CcrError, match="no default MT model for en->xh; supported pairs: en-de.*--model"):
        models.mt_entry("en", "xh")
    with pytest.raises(CcrError, match="does not exist"):
        models.resolve(str(tmp_path / "missing" / "model"))
    assert models.mt_entry("en", "zh").prefix == ">>cmn_Hans<<"
    assert models.mt_entry("en", "ja").revision == "refs/pr/3"
    assert models.mt_entry("en", "de", tiny=True).id == "tiny/marian-en-de"


def test_toy_names_resolve_to_the_shipped_directories_and_unknown_ones_say_what_exists():
    from ccr.models import TOY_DIR, toy_aliases

    for hub, toy in toy_aliases().items():
        resolved = models.resolve(hub, aliases=toy_aliases())
        assert resolved.id == toy and resolved.path == TOY_DIR / toy.removeprefix("toy/")
        assert resolved.revision.startswith("toy-") and resolved.key.startswith(resolved.path.name + "@toy-")
    with pytest.raises(CcrError, match="no toy model 'nope'.*learn_toy_models"):
        models.resolve("toy/nope")
