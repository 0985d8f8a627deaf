"""Commands of self-regulation (selfreg.md): ``collect``, ``train-prm``, ``eval-helper``,
``train-helper``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from agentcritic.cli.app import (
    CONCURRENCY, CONFIG, EXECUTOR, LIMIT, OUT, POLICY, SEED, SET, SPLIT, WORKERS, app, list_override, overrides_from_flags,
    run_stage_command,
)


def _floats(text: Optional[str], what: str) -> Optional[list[float]]:
    """``"0,0.1,1"`` → [0.0, 0.1, 1.0] (``inf`` allowed); ``"0,0.1,...,1"`` continues the step
    of the first two up to the last; None stays None."""
    from agentcritic.config import ConfigError

    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        if "..." in items:
            k = items.index("...")
            if k != 2 or len(items) != 4:
                raise ValueError
            a, b, end = float(items[0]), float(items[1]), float(items[3])
            step = b - a
            if step <= 0 or end < b:
                raise ValueError
            count = int(round((end - a) / step))
            return [round(a + i * step, 10) for i in range(count + 1)]
        return [float(x) for x in items]
    except ValueError:
        raise ConfigError(
            f"--{what} {text!r}: expected comma-separated numbers, e.g. 0,0.5,1 or 0,0.1,...,1"
        ) from None


def _grid_override(key: str, text: Optional[str], what: str) -> list[str]:
    """``key=[…]`` for a comma-separated grid flag that was given (``inf`` kept), nothing otherwise."""
    grid = _floats(text, what)
    if grid is None:
        return []
    return [f"{key}=[" + ",".join("inf" if x == float("inf") else repr(x) for x in grid) + "]"]


@app.command()
def collect(
    env: Optional[str] = typer.Option(None, help="registered env name (default household)"),
    policy: Optional[str] = POLICY,
    intervention: Optional[str] = typer.Option(None, help="who helps: expert | model | search"),
    p_grid: Optional[str] = typer.Option(None, "--p-grid", help="ask probabilities, e.g. 0,0.1,0.2,...,1"),
    schedule: Optional[str] = typer.Option(None, help="random (a coin with probability p per step) | sweep "
                                           "(every set of up to --sweep-asks ask steps; for a deterministic base)"),
    sweep_asks: Optional[int] = typer.Option(None, "--sweep-asks", help="schedule sweep: the largest ask set"),
    n: Optional[int] = typer.Option(None, help="rollouts per task and p"),
    split: Optional[str] = SPLIT,
    limit: Optional[int] = LIMIT,
    seed: Optional[int] = SEED,
    workers: Optional[int] = WORKERS,
    concurrency: Optional[int] = CONCURRENCY,
    executor: Optional[str] = EXECUTOR,
    out: Path = OUT,
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Offline transitions: rollouts asking for help at random with probability p, per task and p.

    With --schedule sweep, instead: the base alone and once for every set of up to --sweep-asks ask
    steps, per task. With a deterministic base (an LLM at temperature 0, the default) that logs both
    branches at every state the base reaches, so the DP's prefix table is exact there.

    Several interventions (each asked at random when asking; the DP and the helper later choose whom):
    give them in a --config TOML file as \\[\\[interventions]] tables, each with its own name and cost,
    e.g. \\[\\[interventions]] kind = "model", name = "strong", cost = 1 ... \\[\\[interventions]] kind =
    "expert", cost = 4.
    """
    from agentcritic.helper.helper_config import CollectConfig

    flags = {"env": env, "policy": policy, "intervention.kind": intervention, "n": n, "split": split,
             "schedule": schedule, "sweep_asks": sweep_asks,
             "limit": limit, "seed": seed, "workers": workers, "executor": executor, "concurrency": concurrency}

    def describe(summary: dict[str, Any]) -> list[str]:
        return [f"{summary['episodes']}/{summary['expected_episodes']} episodes, {summary['transitions']} "
                f"transitions in {out} ({summary['written']} new, {summary['resumed_from']} resumed)"] + [
            (f"  p={row['p']:<4g}" if "p" in row else f"  {row['asks']} ask(s)") +
            f" success {row['success_rate']:6.1%}  interventions/episode "
            f"{row['mean_interventions']:.2f}  steps {row['mean_steps']:.1f}"
            for row in summary.get("per_p") or summary.get("per_asks") or []] + (
            ["  fewest asks that rescue a task (tasks): " + ", ".join(
                f"{k}: {v}" for k, v in summary["fewest_asks"]["counts"].items())] if "fewest_asks" in summary else [])

    overrides = _grid_override("p_grid", p_grid, "p-grid") + overrides_from_flags(flags, set_)
    run_stage_command("collect", CollectConfig, config, overrides, out, describe)


@app.command("train-prm")
def train_prm(
    data: Optional[Path] = typer.Option(None, help="collect run folder"),
    out: Path = typer.Option(..., help="run folder: model/, metrics.json, reliability.png"),
    backbone: Optional[str] = typer.Option(None, help="minilm | a local HF folder"),
    epochs: Optional[int] = typer.Option(None, help="passes over the training examples"),
    average_by_state: Optional[bool] = typer.Option(None, "--average-by-state/--no-average-by-state",
                                                    help="label = mean success over episodes sharing the state"),
    device: Optional[str] = typer.Option(None, help="torch device (cpu, cuda)"),
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Train the process reward model P(success | state, next actor) with Monte-Carlo labels."""
    from agentcritic.helper.helper_config import TrainPRMConfig

    flags = {"data": str(data) if data else None, "backbone": backbone, "training.num_epochs": epochs,
             "average_by_state": average_by_state, "device": device}

    def describe(metrics: dict[str, Any]) -> list[str]:
        from agentcritic.report.plots import write_reliability

        ev, sizes = metrics.get("eval", {}), metrics["sizes"]
        plot = write_reliability(metrics, out / "reliability.png")  # the stage writes data; report/ draws
        return [f"PRM on {sizes['train_examples']} examples ({sizes['tasks'] - sizes['held_out_tasks']} tasks); "
                f"held-out {sizes['eval_examples']} examples ({sizes['held_out_tasks']} tasks): "
                f"AUROC {ev.get('auroc', float('nan')):.3f}, Brier {ev.get('brier', float('nan')):.3f}, "
                f"ECE {ev.get('reliability', {}).get('ece', float('nan')):.3f}",
                f"model: {out / 'model'}" + (f"  reliability plot: {plot}" if plot else "")]

    run_stage_command("train-prm", TrainPRMConfig, config, overrides_from_flags(flags, set_), out, describe)


@app.command("eval-helper")
def eval_helper(
    data: Optional[Path] = typer.Option(None, help="collect run folder of the training tasks"),
    prm: Optional[Path] = typer.Option(None, help="train-prm run folder"),
    helper: Optional[Path] = typer.Option(None, help="train-helper run folder"),
    split: Optional[str] = typer.Option(None, help="held-out split: test | dev"),
    limit: Optional[int] = LIMIT,
    budgets: Optional[str] = typer.Option(None, help="budgets C, e.g. 0,1,2,3,5,inf"),
    methods: Optional[str] = typer.Option(None, help="comma-separated: never,always,random,prm_threshold,prm_gain,"
                                          "dp,helper (method@kind: asking that intervention alone)"),
    out: Path = typer.Option(..., help="run folder: results.jsonl, results.json, success_vs_interventions.png"),
    oracle: Optional[Path] = typer.Option(None, help="a collect --schedule sweep run on the evaluated split: adds "
                                          "the fewest-asks oracle (labelled oracle) and where it asks"),
    state_key: Optional[str] = typer.Option(None, "--state-key", help="the DP's table: auto (default: prefix for a sweep collection, else bins) | bins | prefix"),
    workers: Optional[int] = typer.Option(None, help="parallel worker processes (each loads the policy and models)"),
    executor: Optional[str] = EXECUTOR,
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Every method × budget on held-out tasks: success, interventions per episode, one plot."""
    from agentcritic.helper.helper_config import EvalHelperConfig

    flags = {"data": str(data) if data else None, "prm": str(prm) if prm else None,
             "helper": str(helper) if helper else None, "split": split, "limit": limit,
             "oracle": str(oracle) if oracle else None, "state_key": state_key,
             "workers": workers, "executor": executor}
    overrides = _grid_override("budgets", budgets, "budgets")
    if methods is not None:
        overrides += list_override("methods", [m.strip() for m in methods.split(",") if m.strip()])

    def describe(results: dict[str, Any]) -> list[str]:
        from agentcritic.report.plots import write_success_vs_interventions

        plot = write_success_vs_interventions(
            results["results"], out / "success_vs_interventions.png",
            title=f"{results['env']} ({results['split']}, {results['tasks']} tasks): success vs interventions")
        lines = [results["table"], f"results: {out / 'results.json'}  plot: {plot}"]
        if results.get("oracle") or results.get("ask_steps"):
            from agentcritic.report.plots import write_ask_steps

            shown = write_ask_steps(results, out / "ask_steps.png")
            if shown:
                lines.append(f"where each method asks: {shown}")
        if len(results.get("costs") or {}) > 1:  # several kinds: each alone and the mix against total cost
            from agentcritic.report.plots import write_success_vs_cost

            lines.append(f"cost plot: {write_success_vs_cost(results['results'], out / 'success_vs_cost.png')}")
        return lines

    run_stage_command("eval-helper", EvalHelperConfig, config, overrides + overrides_from_flags(flags, set_), out,
                      describe)


@app.command("train-helper")
def train_helper_command(
    data: Path = typer.Option(..., "--data", help="collect run folder (or its episodes .jsonl file)"),
    prm: Optional[Path] = typer.Option(None, "--prm", help="train-prm run folder (PRM fallback and 'bins' keys)"),
    out: Path = OUT,
    backbone: Optional[str] = typer.Option(None, "--backbone", help="minilm (default) | smollm2-lora | a local HF folder"),
    state_key: Optional[str] = typer.Option(None, "--state-key", help="tabular state: auto (default: prefix for a sweep collection, else bins) | bins (needs --prm) | prefix"),
    budget: Optional[int] = typer.Option(None, "--budget", help="largest budget left the DP labels cover (default 5)"),
    labels: Optional[str] = typer.Option(None, "--labels", help="budget (exact DP, default) | lagrangian"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="passes over the labelled examples"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="examples per step"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="stop after N optimizer steps"),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="peak learning rate"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed of the task split, batch order and head"),
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Distil the budgeted DP's decisions into a helper: table -> DP labels -> minilm or smollm2-lora."""
    from agentcritic.helper.helper_trainer import TrainHelperConfig

    flags = {"data": str(data), "prm": str(prm) if prm is not None else None, "helper.backbone": backbone,
             "helper.labels.state_key": state_key, "helper.labels.budget": budget, "helper.labels.policy": labels,
             "helper.num_epochs": epochs, "helper.batch_size": batch_size, "helper.max_steps": max_steps,
             "helper.learning_rate": learning_rate, "helper.seed": seed}

    def describe(metrics: dict[str, Any]) -> list[str]:
        ev = metrics.get("eval") or {}
        bal = ev.get("balanced_accuracy")
        return [f"helper trained on {metrics['train']['n_train']} examples; held-out {ev.get('n', 0)} examples "
                f"from {ev.get('tasks', 0)} tasks: balanced accuracy {'n/a' if bal is None else f'{bal:.3f}'}; "
                f"saved to {out}"]

    run_stage_command("train-helper", TrainHelperConfig, config, overrides_from_flags(flags, set_), out, describe)
