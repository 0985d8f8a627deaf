from __future__ import annotations

import pytest

from agentcritic.config import ConfigError, RolloutConfig, apply_overrides, load_config


def test_toml_with_overrides(tmp_path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('env = "game24"\npolicy = "random"\nlimit = 5\n[env_kwargs]\nmax_steps = 6\n')
    cfg = load_config(RolloutConfig, path, ["limit=9", "env_kwargs.max_steps=4", 'split="dev"'])
    assert (cfg.env, cfg.policy, cfg.limit, cfg.split) == ("game24", "random", 9, "dev")
    assert cfg.env_kwargs == {"max_steps": 4}


def test_bad_field_names_file_line_and_field(tmp_path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('env = "game24"\n\nlimit = "ten"\n')
    with pytest.raises(ConfigError, match=r"r\.toml:3: field 'limit'.*integer.*'ten'"):
        load_config(RolloutConfig, path)


def test_unknown_key_and_unknown_env_are_errors(tmp_path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('env = "game24"\nlimmit = 3\n')
    with pytest.raises(ConfigError, match=r"r\.toml:2: field 'limmit'.*not permitted"):
        load_config(RolloutConfig, path)
    with pytest.raises(ConfigError, match="unknown env 'chess'.*game24"):
        load_config(RolloutConfig, None, ['env="chess"'])


def test_broken_toml_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('env = "game24"\nlimit = = 3\n')
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML.*line 2"):
        load_config(RolloutConfig, path)


def test_override_syntax() -> None:
    assert apply_overrides({"a": {"b": 1}}, ["a.c=true", "d=hello"]) == {"a": {"b": 1, "c": True}, "d": "hello"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["novalue"])
