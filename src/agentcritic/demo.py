"""The main job until the full pipeline lands: expert and random rollouts on every env.

Writes one run folder per (env, policy) under ``out`` and a summary table (``summary.md``,
``summary.json``). Interrupted, it resumes: each sub-run is a resumable run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcritic.config import RolloutConfig
from agentcritic.rollouts import run_rollouts
from agentcritic.store import RunStore

# ScienceWorld episodes are long (up to 100+ steps through a JVM), so it gets a quarter of the tasks.
TASK_SHARE = {"scienceworld": 0.25}


def run_demo(out: str | Path, limit: int = 20, workers: int = 2, envs: list[str] | None = None) -> Path:
    from agentcritic import envs as envs_mod

    out = Path(out)
    names = envs or envs_mod.names()
    for name in names:
        envs_mod.env_class(name)  # an unknown name fails here, before any work, naming the valid ones
    store = RunStore(out, config={"demo": {"limit": limit, "envs": names}})
    rows: list[dict[str, Any]] = []
    for name in names:
        n = max(1, int(limit * TASK_SHARE.get(name, 1.0)))
        for policy in ("expert", "random"):
            cfg = RolloutConfig(env=name, policy=policy, split="test", limit=n, workers=workers)
            summary = run_rollouts(cfg, out / f"{name}-{policy}")
            rows.append(summary)
    store.write_json("summary.json", rows)
    report = store.write_text("summary.md", summary_table(rows))
    store.mark_done("demo", rows=len(rows))
    store.close()
    return report


def summary_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| env | policy | episodes | success | mean score | mean steps | invalid actions |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['policy']} | {r['episodes']} | {r['success_rate']:.1%} | "
            f"{r['mean_score']:.3f} | {r['mean_steps']:.1f} | {r['invalid_actions']} |"
        )
    return "\n".join(lines) + "\n"
