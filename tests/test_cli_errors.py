"""Errors a user can cause end a command with one paragraph (what was wrong, what to do) and exit
status 2, never a traceback. Each case here was a traceback before; the commands run for real."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcritic.cli import app
from agentcritic.errors import AgentCriticError

SRC = Path(__file__).resolve().parents[1] / "src" / "agentcritic"


@pytest.fixture(autouse=True)
def no_default_server(monkeypatch):
    """The openai backend falls back to these; a developer's shell must not change the outcome."""
    for name in ("AGENTCRITIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def user_error(*args: str) -> str:
    """Run the command; assert it stopped with one error paragraph and status 2; return that paragraph."""
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        f"{type(res.exception).__name__} escaped the command: {res.exception}"
    )
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, res.stderr
    paragraph = res.stderr[res.stderr.index("error: "):].strip()
    assert "\n\n" not in paragraph
    return paragraph


def rollout(tmp_path: Path, *args: str) -> str:
    return user_error("rollout", "--env", "game24", "--limit", "1", *args, *(
        () if "--out" in args else ("--out", str(tmp_path / "run"))))


# ------------------------------------------------------------------------------ --config a folder
@pytest.mark.parametrize("command", [
    ["rollout", "--env", "game24"],
    ["synthesize", "--env", "game24"],
    ["evaluate", "--env", "game24"],
    ["collect"],
    ["train-rm", "--data", "pairs.jsonl"],
])
def test_config_given_a_folder(tmp_path, command) -> None:
    msg = user_error(*command, "--config", str(tmp_path), "--out", str(tmp_path / "run"))
    assert f"{tmp_path} is a folder, not a config file" in msg and "TOML file" in msg
    assert not (tmp_path / "run").exists()


def test_pipeline_config_given_a_folder(tmp_path) -> None:
    assert "is a folder, not a config file" in user_error("run", str(tmp_path))


# --------------------------------------------------------------------- --set of an unknown nested key
def test_unknown_env_kwarg_names_it_and_the_envs_options(tmp_path) -> None:
    msg = rollout(tmp_path, "--set", "env_kwargs.foo=1")
    assert "env 'game24' takes no option 'foo'" in msg
    assert "its options are ['max_steps']" in msg and "env_kwargs.foo" in msg


def test_unknown_env_kwarg_of_an_env_taking_kwargs(tmp_path) -> None:
    msg = user_error("rollout", "--env", "shop", "--limit", "1", "--set", "env_kwargs.colour=1",
                     "--out", str(tmp_path / "run"))
    assert "unknown option(s) ['colour']" in msg and "num_products" in msg


def test_env_kwarg_of_a_bad_type(tmp_path) -> None:
    msg = rollout(tmp_path, "--set", "env_kwargs.max_steps=abc")
    assert "max_steps must be a whole number, got 'abc'" in msg


def test_unknown_llm_kwarg_names_it_and_the_backends_options(tmp_path) -> None:
    msg = rollout(tmp_path, "--policy", "openai", "--base-url", "http://127.0.0.1:9/v1", "--set", "llm.bogus=1")
    assert "LLM backend 'openai' takes no option 'bogus'" in msg
    assert "'base_url'" in msg and "'max_retries'" in msg


def test_llm_kwarg_of_a_bad_type(tmp_path) -> None:
    msg = rollout(tmp_path, "--policy", "openai", "--base-url", "http://127.0.0.1:9/v1",
                  "--set", "llm.max_retries=abc")
    assert "max_retries must be a whole number, got 'abc'" in msg and "llm.max_retries" in msg


def test_unknown_llm_kwarg_of_the_synth_explorer(tmp_path) -> None:
    msg = user_error("synthesize", "--env", "game24", "--tasks", "1", "--explorer", "openai",
                     "--base-url", "http://127.0.0.1:9/v1", "--set", "explorer_llm.bogus=1",
                     "--out", str(tmp_path / "run"))
    assert "takes no option 'bogus'" in msg


# ------------------------------------------------------------------------------ --out a file
@pytest.mark.parametrize("under", [False, True])
@pytest.mark.parametrize("command", [
    ["rollout", "--env", "game24", "--limit", "1"],
    ["synthesize", "--env", "game24", "--tasks", "1"],
    ["collect", "--limit", "1"],
])
def test_out_is_a_file_or_under_one(tmp_path, command, under) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me\n")
    out = blocker / "run" if under else blocker
    msg = user_error(*command, "--out", str(out))
    assert "a file, not a folder" in msg and "--out" in msg
    assert blocker.read_text() == "keep me\n"


# --------------------------------------------------------------------- --policy openai, no --base-url
@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the error is raised in a worker process
def test_openai_policy_without_base_url(tmp_path, workers) -> None:
    msg = user_error("rollout", "--env", "game24", "--limit", "2", "--policy", "openai", "--workers", workers,
                     "--out", str(tmp_path / "run"))
    assert "base_url" in msg and "--base-url" in msg


def test_a_model_path_that_holds_no_model_is_not_an_outage(tmp_path) -> None:
    # an LLMError would be recorded as an infrastructure failure and the user told to re-run as is
    (tmp_path / "empty").mkdir()
    msg = rollout(tmp_path, "--policy", "hf", "--model", str(tmp_path / "empty"))
    assert "not a Hugging Face model folder" in msg and "--model" in msg


def test_openai_explorer_without_base_url(tmp_path) -> None:
    msg = user_error("synthesize", "--env", "game24", "--tasks", "1", "--explorer", "openai",
                     "--out", str(tmp_path / "run"))
    assert "--base-url" in msg


# ---------------------------------------------------------------------------------- the contract
def test_the_installed_command_prints_one_paragraph_and_exits_2(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "agentcritic.cli", "rollout", "--env", "game24",
                          "--config", str(tmp_path), "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "is a folder" in res.stderr and "Traceback" not in res.stderr


def test_every_error_class_of_the_package_is_a_user_error() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text("utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and not node.name.startswith("_"):
                module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
                found.append((module, node.name))
    assert len(found) >= 20
    for module, name in found:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, AgentCriticError), f"{module}.{name}"
        # callers that catch the builtin they were (ValueError, RuntimeError) keep working
        assert issubclass(cls, (ValueError, RuntimeError)) or cls is AgentCriticError, f"{module}.{name}"
