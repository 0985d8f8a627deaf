"""An env of the user's own, as a user brings it: by class path (``tests.user_envs:CounterEnv``),
through an installed package's ``agentcritic.envs`` entry point, or registered in-process; made,
validated in configs, run in spawned workers through the real command, listed, rendered and
checked by ``check_env`` / ``agentcritic check-env``."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcritic import envs
from agentcritic.cli import app
from agentcritic.config import ConfigError, RolloutConfig, load_config
from agentcritic.envs import EnvCheckError, EnvError, check_env, registry
from agentcritic.rendering import render
from agentcritic.types import Trajectory

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests.user_envs` is imported from the checkout, as a user's module is
    sys.path.append(str(REPO))

COUNTER = "tests.user_envs:CounterEnv"
CLI = [str(Path(sys.executable).parent / "agentcritic")]  # the installed console script, as a user runs it


def run_cli(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})


def records(path: Path) -> list[dict]:
    return [json.loads(line)["record"] for line in path.read_text().splitlines()]


@pytest.fixture
def entry_point_package(tmp_path, monkeypatch):
    """An installed package `userpkg` (a dist-info folder on the import path) declaring two envs in
    the agentcritic.envs group: one that works, one whose module is missing."""
    site = tmp_path / "site"
    (site / "userpkg").mkdir(parents=True)
    (site / "userpkg" / "__init__.py").write_text("from tests.user_envs import CounterEnv as TallyEnv\n")
    dist = site / "userpkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[agentcritic.envs]\ntally = userpkg:TallyEnv\nbroken = userpkg.missing:Env\n")
    monkeypatch.syspath_prepend(str(site))
    return site


# ------------------------------------------------------------------------------ the Python API
def test_class_path_makes_the_env_and_it_carries_that_name() -> None:
    env = envs.make(COUNTER, size=5)
    assert type(env).__name__ == "CounterEnv" and env.name == COUNTER
    assert env.task_ids("test") == ["count-6", "count-9", "count-12", "count-15", "count-18"]
    env.reset(task_id="count-6", seed=0)
    env.step("add 2")
    clone = pickle.loads(pickle.dumps(env))  # what a worker rebuilds keeps the name and the state
    assert clone.name == COUNTER and clone.actions == ["add 2"] and clone.last_observation == env.last_observation
    assert registry.entry(COUNTER).source == "class path"


@pytest.mark.parametrize(("name", "expected"), [
    ("tests.no_such_module:CounterEnv", r"cannot import module 'tests.no_such_module'.*PYTHONPATH"),
    ("tests.user_envs:Nope", r"has no attribute 'Nope'; its TextEnv classes are \['CounterEnv', "),
    ("tests.user_envs:not_an_env", r"is a function, not a TextEnv subclass; an env class derives from"),
    ("tests.user_envs:NotAnEnv", r"is the class 'NotAnEnv', not a TextEnv subclass"),
    ("tests.user_envs:", r"is not a class path; write it as package.module:Class"),
    ("no_such_env", r"unknown env 'no_such_env'.*package.module:Class.*agentcritic.envs"),
])
def test_a_bad_class_path_is_one_paragraph_naming_what_failed(name, expected) -> None:
    with pytest.raises(EnvError, match=expected) as info:
        envs.make(name)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_a_module_that_raises_on_import_is_named(tmp_path, monkeypatch) -> None:
    (tmp_path / "bad_user_env.py").write_text("raise RuntimeError('the catalogue file is missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EnvError, match=r"importing module 'bad_user_env' raised RuntimeError: the catalogue"):
        envs.make("bad_user_env:Env")


def test_configs_accept_a_class_path_and_refuse_a_bad_one(tmp_path) -> None:
    path = tmp_path / "rollout.toml"
    path.write_text(f'env = "{COUNTER}"\nlimit = 2\n')
    cfg = load_config(RolloutConfig, path)
    assert cfg.env == COUNTER and cfg.env_spec().make().name == COUNTER
    path.write_text('env = "tests.user_envs:Nope"\n')
    with pytest.raises(ConfigError, match=r"rollout.toml:1: field 'env': env 'tests.user_envs:Nope'.*has no attribute"):
        load_config(RolloutConfig, path)


def test_trajectories_carry_the_class_path_and_render_through_its_class(tmp_path) -> None:
    from agentcritic.pipeline import run_kind

    run_kind("rollout", RolloutConfig(env=COUNTER, limit=2, policy="expert"), tmp_path / "run")
    rows = records(tmp_path / "run" / "rollouts.jsonl")
    assert [r["env"] for r in rows] == [COUNTER, COUNTER] and all(r["success"] for r in rows)
    traj = Trajectory.from_dict(rows[0])
    assert "Exactly right!" in traj.steps[-1].observation
    text = render(traj.instruction, traj)
    # the class's rm_observation hides the verdict from the reward model
    assert "Exactly right!" not in text and "Observation: The counter shows" in text


def test_a_name_registered_in_process_reaches_spawned_workers(tmp_path, monkeypatch) -> None:
    from agentcritic.pipeline import run_kind
    from tests.user_envs import CounterEnv

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # no registration outlives the test
    monkeypatch.setenv(registry.ENV_VAR, "{}")
    envs.register("counter-here", CounterEnv)
    assert json.loads(os.environ[registry.ENV_VAR])["counter-here"] == COUNTER
    outcome = run_kind("rollout", RolloutConfig(env="counter-here", limit=3, workers=2), tmp_path / "run")
    assert outcome.summary["episodes"] == 3 and outcome.summary["errors"] == 0
    assert {r["env"] for r in records(tmp_path / "run" / "rollouts.jsonl")} == {"counter-here"}
    with pytest.raises(EnvError, match="a name is a plain word"):
        envs.register("a:b", CounterEnv)


def test_entry_points_are_found_made_lazily_and_listed(entry_point_package) -> None:
    sys.modules.pop("userpkg", None)
    found = {e.name: e for e in envs.entries()}
    assert found["tally"].source == "entry point" and found["tally"].package == "userpkg"
    assert found["game24"].source == "built-in"
    assert "userpkg" not in sys.modules, "listing the entry points must not import them"
    env = envs.make("tally")
    assert type(env).__name__ == "CounterEnv" and env.name == "tally"
    with pytest.raises(EnvError, match=r"env 'broken' \(the entry point of package 'userpkg'\): cannot import module"):
        envs.make("broken")
    res = CliRunner().invoke(app, ["envs"])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.stdout.splitlines() if line.strip()}
    assert "entry point (userpkg)" in lines["tally"] and "(userpkg:TallyEnv)" in lines["tally"]
    assert "built-in" in lines["shop"] and " 200 " in lines["shop"]
    assert "cannot be made" in lines["broken"] and "userpkg.missing" in lines["broken"]
    assert "1 env(s) could not be made: broken" in res.stderr


# ------------------------------------------------------------------------------ the real command
def test_cli_rollout_with_two_workers_on_a_class_path(tmp_path) -> None:
    out = tmp_path / "run"
    res = run_cli("rollout", "--env", COUNTER, "--workers", "2", "--limit", "4", "--policy", "random", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "4 episodes" in res.stdout and "errors: 0" in res.stdout
    rows = records(out / "rollouts.jsonl")
    assert len(rows) == 4 and {r["env"] for r in rows} == {COUNTER}
    assert all(r["meta"]["policy"] == "random" for r in rows)


@pytest.mark.slow
def test_cli_ray_tasks_rebuild_a_class_path_env(tmp_path) -> None:
    pytest.importorskip("ray")
    args = ["rollout", "--env", COUNTER, "--policy", "random", "--limit", "3", "--workers", "2"]
    assert run_cli(*args, "--out", str(tmp_path / "pool")).returncode == 0
    res = run_cli(*args, "--executor", "ray", "--out", str(tmp_path / "ray"))
    assert res.returncode == 0, res.stderr[-2000:]
    by_key = lambda rows: {r["meta"]["key"]: r for r in rows}  # noqa: E731  (finishing order differs)
    ray, pool = by_key(records(tmp_path / "ray" / "rollouts.jsonl")), by_key(records(tmp_path / "pool" / "rollouts.jsonl"))
    assert ray == pool and len(ray) == 3 and {r["env"] for r in ray.values()} == {COUNTER}


def test_cli_entry_point_env_in_two_workers(tmp_path, entry_point_package) -> None:
    out = tmp_path / "run"
    res = run_cli("rollout", "--env", "tally", "--workers", "2", "--limit", "3", "--out", str(out),
                  env={"PYTHONPATH": os.pathsep.join([str(entry_point_package), str(REPO)])}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert {r["env"] for r in records(out / "rollouts.jsonl")} == {"tally"}


def test_cli_bad_class_path_is_one_paragraph(tmp_path) -> None:
    res = run_cli("rollout", "--env", "tests.user_envs:CountrEnv", "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "has no attribute 'CountrEnv'; its TextEnv classes are ['CounterEnv'" in res.stderr
    assert not (tmp_path / "run" / "rollouts.jsonl").exists()


def test_cli_check_env_prints_each_check_and_its_fix() -> None:
    good = run_cli("check-env", COUNTER)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS  determinism" in good.stdout and "two instances" in good.stdout
    assert "PASS  expert: solved 5 test task(s)" in good.stdout and "all 13 checks pass" in good.stdout
    bad = run_cli("check-env", "tests.user_envs:UnseededCounterEnv")
    assert bad.returncode == 2
    assert "FAIL  determinism: two instances played task" in bad.stdout
    assert "fix: draw every random choice from a generator seeded in _reset" in bad.stdout
    assert "error: env tests.user_envs:UnseededCounterEnv fails" in bad.stderr
    missing = run_cli("check-env", "tests.user_envs:Nope")
    assert missing.returncode == 2 and "FAIL  construct" in missing.stdout and "has no attribute 'Nope'" in missing.stdout


# ------------------------------------------------------------------------------ check_env
def test_check_env_passes_a_conforming_env_given_by_instance_class_or_name() -> None:
    from tests.user_envs import CounterEnv

    for given in (CounterEnv(size=4), CounterEnv, COUNTER):
        report = check_env(given)
        assert report.ok and not report.failures
        assert [c.name for c in report.checks] == [
            "construct", "splits", "unknown split and task", "reset", "step", "invalid action", "max_steps",
            "determinism", "restore", "pickle", "expert", "rm_observation", "helper_view"]


def test_check_env_catches_an_unseeded_env_only_across_instances() -> None:
    from tests.user_envs import UnseededCounterEnv

    with pytest.raises(EnvCheckError) as info:
        check_env(UnseededCounterEnv)
    report = info.value.report
    failed = {c.name: c for c in report.failures}
    assert "determinism" in failed and "two instances played task" in failed["determinism"].detail
    assert "random.Random(seed)" in failed["determinism"].fix
    assert "FAIL  determinism" in str(info.value)  # the error's message is the report


def test_check_env_catches_an_invalid_action_that_raises() -> None:
    report = check_env("tests.user_envs:RaisingCounterEnv", raise_on_failure=False)
    failed = {c.name: c for c in report.failures}
    assert set(failed) == {"invalid action", "max_steps"}
    assert "raised ValueError: bad action" in failed["invalid action"].detail
    assert "valid=False" in failed["invalid action"].fix
    assert {c.name for c in report.checks if c.passed} >= {"determinism", "restore", "pickle", "expert"}
