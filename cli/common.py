"""Shared option parsing: profile + flags -> Config, and the one-line error contract."""
from __future__ import annotations

from genaug.config import Config, load_config


# config keys whose flag is not --KEY with dashes (--train-fraction sets the list benchmark.train_fractions)
_FLAG_OF_KEY = {"train_fractions": "--train-fraction", "out_root": "--out", "model_epochs": "--epochs"}


def flag_for(key: str) -> str:
    """The flag that sets config key ``key`` (the part after the section): ``ema`` -> ``--ema``."""
    return _FLAG_OF_KEY.get(key, "--" + key.replace("_", "-"))


def build_config(profile: str | list[str] | None, **sections: dict) -> Config:
    """Profile YAML overrides the code defaults (several profiles: each over the ones before it); flags that
    were given (not None) override them all. A bad value from a flag is told with the flag's name."""
    flags = {f"{section}.{key}": flag_for(key) for section, given in sections.items() if given
             for key, value in given.items() if value is not None}
    return load_config(profile, {k: v for k, v in sections.items() if v}, flags)
