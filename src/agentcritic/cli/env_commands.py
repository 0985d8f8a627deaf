"""Commands over environments and rollouts: ``envs``, ``play``, ``rollout``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import (
    BASE_URL, CONFIG, EXECUTOR, LIMIT, MODE, MODEL, OUT, POLICY, SEED, SET, SPLIT, WORKERS, app, fail, llm_flags,
    overrides_from_flags, run_stage_command, user_errors,
)


@app.command()
def envs(env: Optional[str] = typer.Option(None, help="show one env only")) -> None:
    """List the registered environments, their splits and sizes."""
    from agentcritic import envs as envs_mod

    names = [env] if env else envs_mod.names()
    typer.echo(f"{'env':<14}{'train':>8}{'dev':>8}{'test':>8}  max_steps  example task")
    for name in names:
        e = envs_mod.make(name)
        try:
            sizes = {s: len(e.task_ids(s)) for s in e.splits}
            example = e.task_ids("test")[0]
            typer.echo(
                f"{name:<14}{sizes.get('train', 0):>8}{sizes.get('dev', 0):>8}{sizes.get('test', 0):>8}"
                f"  {e.max_steps:>9}  {example}"
            )
        finally:
            e.close()


@app.command()
def play(
    env: str = typer.Argument(..., help="registered env name"),
    task_id: Optional[str] = typer.Option(None, "--task-id", help="task to play (default: the split's first)"),
    split: str = typer.Option("test", help="split to draw the task from"),
    seed: int = typer.Option(0, help="episode seed"),
    show: int = typer.Option(40, help="how many admissible actions to list"),
) -> None:
    """Play a task yourself: type an action, its number in the list, '?' for a hint, or 'q' to quit."""
    from agentcritic import envs as envs_mod

    e = envs_mod.make(env)
    task = task_id or e.task_ids(split)[0]
    obs, info = e.reset(task_id=task, seed=seed)
    typer.secho(f"Task {task}: {info['instruction']}", bold=True)
    done = False
    while not done:
        typer.echo("\n" + obs)
        actions = info.get("admissible_actions") or []
        if actions:
            typer.echo(f"\nAdmissible actions ({len(actions)}):")
            for i, a in enumerate(actions[:show]):
                typer.echo(f"  {i:>3}. {a}")
            if len(actions) > show:
                typer.echo(f"  ... and {len(actions) - show} more (type the action text)")
        try:
            line = input("> ").strip()
        except EOFError:
            line = "q"
        if line in ("q", "quit", "exit"):
            break
        if line == "?":
            typer.echo(f"hint: {e.expert_action()}")
            continue
        action = actions[int(line)] if line.isdigit() and int(line) < len(actions) else line
        obs, reward, terminated, truncated, info = e.step(action)
        flag = " (invalid)" if info.get("invalid") else ""
        typer.echo(f"[{action}] reward {reward:+.3f}, score {info['score']:.3f}{flag}")
        done = terminated or truncated
    if done:
        typer.echo("\n" + obs)
    typer.secho(
        f"\nEpisode over after {len(e.actions)} steps: score {e.score:.3f}, success {e.success}",
        bold=True,
    )
    e.close()


@app.command()
def rollout(
    env: Optional[str] = typer.Option(None, help="registered env name"),
    policy: Optional[str] = POLICY,
    mode: Optional[str] = MODE,
    temperature: Optional[float] = typer.Option(None, help="LLM policies: sampling temperature (0 = greedy)"),
    base_url: Optional[str] = BASE_URL,
    model: Optional[str] = MODEL,
    split: Optional[str] = SPLIT,
    limit: Optional[int] = LIMIT,
    samples: Optional[int] = typer.Option(None, help="episodes per task"),
    seed: Optional[int] = SEED,
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="override the env's step limit"),
    workers: Optional[int] = WORKERS,
    executor: Optional[str] = EXECUTOR,
    out: Path = OUT,
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Roll a policy out over a split into a run folder (resumes when re-run)."""
    from agentcritic.config import RolloutConfig

    flags = {"env": env, "policy": policy, "split": split, "limit": limit, "samples": samples, "seed": seed,
             "max_steps": max_steps, "workers": workers, "executor": executor, "mode": mode,
             "temperature": temperature, **llm_flags(policy, base_url, model)}
    run_stage_command("rollout", RolloutConfig, config, overrides_from_flags(flags, set_), out, lambda summary: [
        f"{summary['episodes']} episodes in {out}: success {summary['success_rate']:.1%}, "
        f"mean score {summary['mean_score']:.3f}, mean steps {summary['mean_steps']:.1f} "
        f"({summary['written']} new, {summary['resumed_from']} resumed)"])
