"""Commands over reward-data synthesis: ``synthesize``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import app, fail, finish, overrides_from_flags, run_stage_command, user_errors


@app.command()
def synthesize(
    env: Optional[str] = typer.Option(None, help="registered env name: game24, shop, scienceworld, textworld"),
    tasks: Optional[int] = typer.Option(None, help="training tasks (random intents) to explore"),
    trajectories: Optional[int] = typer.Option(None, "--trajectories", help="explorer trajectories per task"),
    explorer: Optional[str] = typer.Option(None, help="random | smollm2 | hf | openai | llamacpp | expert"),
    refiner: Optional[str] = typer.Option(None, help="LLM backend that writes and re-phrases intents (default smollm2)"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai explorer/refiner: server URL"),
    model: Optional[str] = typer.Option(None, help="openai: model name; hf/llamacpp: model path (explorer and refiner)"),
    seed: Optional[int] = typer.Option(None, help="base seed"),
    workers: Optional[int] = typer.Option(None, help="parallel worker processes"),
    executor: Optional[str] = typer.Option(None, help="pool | ray"),
    out: Path = typer.Option(..., help="run folder (re-running the same command resumes it)"),
    config: Optional[Path] = typer.Option(None, help="TOML config (SynthConfig fields); flags override it"),
    set_: list[str] = typer.Option([], "--set", help="override any config field: KEY=VALUE (repeatable)"),
) -> None:
    """Make preference pairs without labels: explore, refine intents, make negatives, filter (resumes)."""
    from agentcritic.config import load_config
    from agentcritic.synth import SynthConfig

    flags: dict[str, object] = {
        "env": env, "tasks": tasks, "trajectories_per_task": trajectories, "explorer": explorer,
        "refiner": refiner, "seed": seed, "workers": workers, "executor": executor,
    }
    for side, backend in (("explorer", explorer), ("refiner", refiner or "smollm2")):
        if base_url is not None and backend == "openai":
            flags[f"{side}_llm.base_url"] = base_url
        if model is not None and backend in ("openai", "hf", "llamacpp"):
            flags[f"{side}_llm.{'model' if backend == 'openai' else 'path'}"] = model
    try:
        cfg = load_config(SynthConfig, config, overrides_from_flags(flags, set_))
        outcome = run_stage_command("synthesize", cfg, out)
    except user_errors() as exc:
        fail(exc)
        return
    if outcome is None:
        return
    stats = outcome.summary
    per_source = ", ".join(f"{k} {v}" for k, v in stats["per_source"].items()) or "none"
    rate = stats["verification"]["rate"]
    typer.echo(
        f"{stats['pairs']} pairs in {out / 'preferences.jsonl'} ({per_source}); positives verified "
        f"{'n/a' if rate is None else f'{rate:.1%}'} of {stats['verification']['checked']}; "
        f"stats in {out / 'synth_stats.json'}"
    )
    finish(outcome)
