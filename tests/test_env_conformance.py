"""One contract test over every built-in env: :func:`agentcritic.envs.check_env`, the checker users
run on their own envs (``agentcritic check-env``), like Gymnasium's ``check_env``."""

from __future__ import annotations

import pytest

from agentcritic.envs import check_env, registry

# How many test tasks the expert must solve here, per env (the JVM envs are slower to reset).
EXPERT_TASKS = {"game24": 100, "shop": 40, "scienceworld": 4, "textworld": 10}
#: every check, in the order check_env runs them; a built-in env skips none
CHECKS = ["construct", "splits", "unknown split and task", "reset", "step", "invalid action", "max_steps",
          "determinism", "restore", "pickle", "expert", "rm_observation", "helper_view"]


@pytest.mark.parametrize("name", sorted(registry.BUILTIN))
def test_builtin_env_passes_check_env(name: str) -> None:
    report = check_env(name, expert_tasks=EXPERT_TASKS.get(name, 5), raise_on_failure=False)
    assert report.ok, str(report)
    assert [c.name for c in report.checks] == CHECKS
    skipped = [c.name for c in report.checks if c.passed is None]
    assert not skipped, f"{name}: skipped {skipped}\n{report}"
    expert = next(c for c in report.checks if c.name == "expert")
    assert expert.detail == f"solved {EXPERT_TASKS.get(name, 5)} test task(s)"
