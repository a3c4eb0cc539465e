"""One --set namespace over the shared and the method config; TOML tables; checkpoint-pinned architecture."""

from dataclasses import dataclass

import pytest

from ccr.errors import CcrError
from ccr.train.config import MethodConfig, TrainConfig, check_disjoint, resolve_configs
from ccr.train.model.methods.baseline import BaselineConfig


def test_layers_route_keys_to_their_config_in_order(tmp_path):
    toml = tmp_path / "train.toml"
    toml.write_text('[train]\nepochs = 7\nlr = 0.5\ntext_tower = "mine"\n[baseline]\nmargin = 0.3\n'
                    '[features]\nmodel = "x"\n[models]\nmine = "tiny/bert"\n')
    cfg, method = resolve_configs("baseline", BaselineConfig, config=toml, sets=["lr=0.25", "w_mt=0", "lang=de,fr"],
                                  overrides={"epochs": 9, "batch_size": None})
    assert (cfg.epochs, cfg.lr, cfg.lang, cfg.batch_size) == (9, 0.25, ["de", "fr"], 128)
    assert (method.margin, method.w_mt) == (0.3, 0.0)
    assert cfg.aliases == {"mine": "tiny/bert"} and cfg.text_tower == "mine"


def test_a_file_without_tables_is_read_whole_and_unknown_keys_fail(tmp_path):
    toml = tmp_path / "flat.toml"
    toml.write_text("epochs = 3\nloss = 'infonce'\n")
    cfg, method = resolve_configs("baseline", BaselineConfig, config=toml)
    assert cfg.epochs == 3 and method.loss == "infonce"
    with pytest.raises(CcrError, match="unknown option 'margn' for method baseline; known options: .*margin"):
        resolve_configs("baseline", BaselineConfig, sets=["margn=1"])
    with pytest.raises(CcrError, match="loss: expected one of triplet, infonce"):
        resolve_configs("baseline", BaselineConfig, sets=["loss=hinge"])


def test_resumed_runs_keep_the_checkpoints_architecture():
    pinned = {"train": {"embed_dim": 32, "text_tower": "tiny/bert"}, "method": {}}
    cfg, _ = resolve_configs("baseline", BaselineConfig, sets=["embed_dim=256", "epochs=4"], pinned=pinned)
    assert (cfg.embed_dim, cfg.text_tower, cfg.epochs) == (32, "tiny/bert", 4)
    assert TrainConfig().embed_dim == 1536  # NRCCR's common space


def test_a_method_may_not_shadow_a_shared_option():
    @dataclass
    class Clash(MethodConfig):
        lr: float = 1.0

    with pytest.raises(TypeError, match="reuses shared option names: \\['lr'\\]"):
        check_disjoint("clash", Clash)
