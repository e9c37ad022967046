"""Shared option parsing: profile + flags -> Config, and the one-line error contract."""
from __future__ import annotations

from genaug.config import Config, load_config


def build_config(profile: str | None, **sections: dict) -> Config:
    """Profile YAML overrides the code defaults; flags that were given (not None) override both."""
    return load_config(profile, {k: v for k, v in sections.items() if v})
