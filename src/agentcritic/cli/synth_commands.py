"""Commands over reward-data synthesis: ``synthesize``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from agentcritic.cli.app import (
    BASE_URL, CONCURRENCY, CONFIG, EXECUTOR, MODEL, OUT, SEED, SET, WORKERS, app, llm_flags, overrides_from_flags,
    run_stage_command,
)


def provenance_lines(stats: dict[str, Any]) -> list[str]:
    """Positives and pairs per explorer and per intent source, and the oracle-assisted share."""
    lines = []
    for key, what in (("by_explorer", "explorer"), ("by_intent_source", "intent source")):
        counts = stats.get(key) or {}
        names = sorted(set(counts.get("positives", {})) | set(counts.get("pairs", {})))
        if names:
            lines.append(f"per {what} (positives/pairs): " + ", ".join(
                f"{n} {counts.get('positives', {}).get(n, 0)}/{counts.get('pairs', {}).get(n, 0)}" for n in names))
    oracle = (stats.get("oracle_assisted") or {}).get("pairs", 0)
    if oracle:
        lines.append(f"oracle-assisted: {oracle} of {stats['pairs']} pairs have a positive from the env's expert")
    return lines


@app.command()
def synthesize(
    env: Optional[str] = typer.Option(None, help="registered env name: game24, shop, scienceworld, textworld"),
    tasks: Optional[int] = typer.Option(None, help="training tasks (random intents) to explore"),
    trajectories: Optional[int] = typer.Option(None, "--trajectories", help="explorer trajectories per task"),
    explorer: Optional[str] = typer.Option(None, help="random | smollm2 | hf | openai | llamacpp | expert"),
    refiner: Optional[str] = typer.Option(None, help="LLM backend that writes and re-phrases intents (default smollm2)"),
    base_url: Optional[str] = BASE_URL,
    model: Optional[str] = MODEL,
    seed: Optional[int] = SEED,
    workers: Optional[int] = WORKERS,
    concurrency: Optional[int] = CONCURRENCY,
    executor: Optional[str] = EXECUTOR,
    out: Path = OUT,
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Make preference pairs without labels: explore, refine intents, make negatives, filter (resumes).

    ``--base-url`` and ``--model`` go to the explorer and the refiner, where they are LLM backends.
    """
    from agentcritic.synth import SynthConfig

    flags: dict[str, object] = {
        "env": env, "tasks": tasks, "trajectories_per_task": trajectories, "explorer": explorer,
        "refiner": refiner, "seed": seed, "workers": workers, "executor": executor,
        "concurrency": concurrency,
    }
    for side, backend in (("explorer", explorer), ("refiner", refiner or "smollm2")):
        if backend in ("openai", "hf", "llamacpp"):
            flags.update(llm_flags(backend, base_url if backend == "openai" else None, model, f"{side}_llm"))

    def describe(stats: dict[str, Any]) -> list[str]:
        per_source = ", ".join(f"{k} {v}" for k, v in stats["per_source"].items()) or "none"
        rate = stats["verification"]["rate"]
        return [f"{stats['pairs']} pairs in {out / 'preferences.jsonl'} ({per_source}); positives verified "
                f"{'n/a' if rate is None else f'{rate:.1%}'} of {stats['verification']['checked']}; "
                f"stats in {out / 'synth_stats.json'}", *provenance_lines(stats)]

    run_stage_command("synthesize", SynthConfig, config, overrides_from_flags(flags, set_), out, describe)
