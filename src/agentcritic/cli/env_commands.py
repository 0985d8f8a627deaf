"""Commands over environments and rollouts: ``envs``, ``check-env``, ``play``, ``rollout``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import (
    BASE_URL, CONCURRENCY, CONFIG, EXECUTOR, LIMIT, MODE, MODEL, OUT, POLICY, SEED, SET, SPLIT, USER_ERROR_EXIT, WORKERS, app, fail,
    llm_flags, overrides_from_flags, paragraph, run_stage_command, user_errors,
)
from agentcritic.errors import AgentCriticError


@app.command()
def envs(env: Optional[str] = typer.Option(None, help="show one env only (a name or package.module:Class)")) -> None:
    """List the environments: built-in, registered by installed packages (the 'agentcritic.envs'
    entry-point group) or named by class path, with their source, splits and sizes."""
    from agentcritic.envs import registry

    entries = [registry.entry(env)] if env else registry.entries()
    typer.echo(f"{'env':<14}{'source':<24}{'train':>7}{'dev':>7}{'test':>7}  max_steps  example task  (class)")
    broken = []
    for e in entries:
        head = f"{e.name:<14}{e.describe():<24}"
        try:
            made = registry.make(e.name)
        except AgentCriticError as exc:
            if env:
                raise
            broken.append(e.name)
            typer.echo(f"{head}cannot be made: {paragraph(exc)}")
            continue
        try:
            sizes = {s: len(made.task_ids(s)) for s in made.splits}
            example = made.task_ids(made.splits[-1])[0]
            typer.echo(f"{head}{sizes.get('train', 0):>7}{sizes.get('dev', 0):>7}{sizes.get('test', 0):>7}"
                       f"  {made.max_steps:>9}  {example}  ({e.target})")
        finally:
            made.close()
    typer.echo("An env of your own: --env package.module:Class, or an installed package's 'agentcritic.envs' "
               "entry point; `agentcritic check-env NAME` checks it.")
    if broken:
        typer.secho(f"{len(broken)} env(s) could not be made: {', '.join(broken)}", fg=typer.colors.YELLOW, err=True)


@app.command("check-env")
def check_env(
    env: str = typer.Argument(..., help="env name or package.module:Class"),
    expert_tasks: int = typer.Option(5, "--expert-tasks", help="test tasks the expert (where the env has one) must solve"),
    seed: int = typer.Option(7, help="seed of the random episodes compared"),
) -> None:
    """Check that an env keeps the TextEnv contract: reset/step types, info keys, invalid actions
    answered, max_steps, same-seed determinism on two instances, restore, pickling, the expert.
    Prints each check with how to fix a failure; exits with status 2 when one fails."""
    from agentcritic.envs import check_env as check

    report = check(env, expert_tasks=expert_tasks, seed=seed, raise_on_failure=False)
    for c in report.checks:
        colour = {True: typer.colors.GREEN, False: typer.colors.RED, None: typer.colors.YELLOW}[c.passed]
        typer.secho(c.line(), fg=colour)
    if not report.ok:
        typer.secho(f"error: env {env} fails {len(report.failures)} of {len(report.checks)} checks "
                    f"({', '.join(c.name for c in report.failures)}); fix them as each says and run check-env again",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(USER_ERROR_EXIT)
    typer.echo(f"env {env}: all {len(report.checks)} checks pass "
               f"({sum(c.passed is None for c in report.checks)} skipped)")


@app.command()
def play(
    env: str = typer.Argument(..., help="env name or package.module:Class"),
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
    env: Optional[str] = typer.Option(None, help="env name or package.module:Class (see `agentcritic envs`)"),
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
    concurrency: Optional[int] = CONCURRENCY,
    executor: Optional[str] = EXECUTOR,
    out: Path = OUT,
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Roll a policy out over a split into a run folder (resumes when re-run)."""
    from agentcritic.config import RolloutConfig

    flags = {"env": env, "policy": policy, "split": split, "limit": limit, "samples": samples, "seed": seed,
             "max_steps": max_steps, "workers": workers, "executor": executor, "concurrency": concurrency, "mode": mode,
             "temperature": temperature, **llm_flags(policy, base_url, model)}
    run_stage_command("rollout", RolloutConfig, config, overrides_from_flags(flags, set_), out, lambda summary: [
        f"{summary['episodes']} episodes in {out}: success {summary['success_rate']:.1%}, "
        f"mean score {summary['mean_score']:.3f}, mean steps {summary['mean_steps']:.1f} "
        f"({summary['written']} new, {summary['resumed_from']} resumed)"])
