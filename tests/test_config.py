import pytest

from genaug.config import config_from_dict, load_config
from genaug.errors import ConfigError


def test_defaults_then_profile_then_flags(tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text("gan:\n  epochs: 7\n  lr: 0.001\nrun:\n  seed: 5\n")
    cfg = load_config(str(prof), {"gan": {"epochs": 3, "lr": None}})
    assert cfg.gan.epochs == 3 and cfg.gan.lr == 0.001 and cfg.run.seed == 5
    assert cfg.gan.nz == 100  # untouched default


@pytest.mark.parametrize("text,match", [
    ("gan:\n  epoch: 3\n", "unknown key 'gan.epoch'"),
    ("gans:\n  epochs: 3\n", "unknown section 'gans'"),
    ("gan:\n  epochs: many\n", "'gan.epochs' expects int"),
    ("gan:\n  epochs: -1\n", "'gan.epochs' must be positive"),
    ("gan: [1, 2\n", "not valid YAML"),
    ("data:\n  val_fraction: 1.5\n", "data.val_fraction"),
    ("benchmark:\n  early_stop_after: 1.5\n", "benchmark.early_stop_after"),
])
def test_bad_config_names_the_key(tmp_path, text, match):
    prof = tmp_path / "bad.yaml"
    prof.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(str(prof))


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config("no-such-profile")


def test_yaml_is_read_safely(tmp_path):
    prof = tmp_path / "evil.yaml"
    prof.write_text("run: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(prof))


def test_a_saved_config_from_before_early_stop_after_keeps_stopping_from_epoch_one():
    # a resumed run must train its new cells with the rule its old cells were trained with
    saved = load_config().to_dict()
    del saved["benchmark"]["early_stop_after"]
    assert config_from_dict(saved).benchmark.early_stop_after == 0.0
    assert load_config().benchmark.early_stop_after == 0.5
    assert load_config().benchmark.min_epochs(12) == 6 and load_config().benchmark.min_epochs(1) == 0
    saved["benchmark"]["early_stop_after"] = 0.25
    assert config_from_dict(saved).benchmark.early_stop_after == 0.25
