"""Commands over outcome reward models: ``train-rm``, ``eval-rm``, ``serve-rm``.

Each maps its flags onto a config of :mod:`agentcritic.rm.stages` (config file + ``--set``) and
calls the library; torch loads inside the commands only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import app, fail, finish, overrides_from_flags, run_stage_command, toml_value, user_errors


def _list_override(key: str, values: list[str]) -> list[str]:
    """``key=["a", "b"]`` for a repeatable flag that was given, nothing otherwise."""
    if not values:
        return []
    return [f"{key}=[{', '.join(toml_value(str(v)) for v in values)}]"]


@app.command("train-rm")
def train_rm(
    data: list[Path] = typer.Option([], "--data", help="preferences.jsonl to train on (repeatable)"),
    out: Path = typer.Option(..., help="run folder (re-running the same command resumes it)"),
    eval_data: list[Path] = typer.Option(
        [], "--eval-data", help="held-out preference files (repeatable; default: hold out 10% of the intents)"
    ),
    backbone: Optional[str] = typer.Option(None, help="'minilm' (default) or a local Hugging Face model folder"),
    epochs: Optional[int] = typer.Option(None, help="passes over the training pairs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="pairs per step"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="stop after N optimizer steps"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="tokens per input"),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="peak learning rate"),
    seed: Optional[int] = typer.Option(None, help="seed of the split, batch order and head"),
    config: Optional[Path] = typer.Option(None, help="TOML config (TrainRMConfig); flags override it"),
    set_: list[str] = typer.Option([], "--set", help="override any config field: KEY=VALUE, e.g. train.warmup_ratio=0"),
) -> None:
    """Train a reward model on preference pairs: checkpoints, held-out accuracy, a save_pretrained folder."""
    from agentcritic.config import load_config
    from agentcritic.rm.stages import TrainRMConfig

    flags = {
        "backbone": backbone,
        "max_length": max_length,
        "train.num_epochs": epochs,
        "train.batch_size": batch_size,
        "train.max_steps": max_steps,
        "train.learning_rate": learning_rate,
        "train.seed": seed,
    }
    overrides = (
        _list_override("data", [str(d) for d in data])
        + _list_override("eval_data", [str(d) for d in eval_data])
        + overrides_from_flags(flags, set_)
    )
    try:
        cfg = load_config(TrainRMConfig, config, overrides)
        outcome = run_stage_command("train-rm", cfg, out)
    except user_errors() as exc:
        fail(exc)
        return
    if outcome is None:
        return
    metrics = outcome.summary
    tr = metrics["train"]
    ev = metrics.get("eval") or {}
    state = "already trained; nothing to do" if metrics["resumed"] else f"{tr['steps']} steps"
    typer.echo(
        f"{out}: {state}; {tr['n_train']} train pairs, {tr['n_eval']} held out, "
        f"{tr['pairs_per_second']:.1f} pairs/s, loss {_num(tr.get('first_loss'))} -> {_num(tr.get('final_loss'))}"
    )
    if ev.get("n"):
        per = ", ".join(f"{k} {v['accuracy']:.3f} ({v['n']})" for k, v in ev.get("per_source", {}).items())
        typer.echo(f"held-out accuracy {ev['accuracy']:.3f} on {ev['n']} pairs; per source: {per}")
    typer.secho(f"model: {Path(metrics['out']) / 'model'}", bold=True)
    finish(outcome)


def _num(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


@app.command("eval-rm")
def eval_rm(
    model: Optional[Path] = typer.Option(None, help="train-rm run folder or saved model folder"),
    data: list[Path] = typer.Option([], "--data", help="preference files to evaluate on (repeatable)"),
    output: Optional[Path] = typer.Option(None, "--output", help="report path (default RUN/rm_eval.json)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="inputs per forward"),
    plot: Optional[bool] = typer.Option(None, "--plot/--no-plot", help="also write the histograms as a PNG"),
    cross_domain: Optional[bool] = typer.Option(
        None, "--cross-domain/--no-cross-domain", help="also train a fresh model per env and test it on the others"
    ),
    config: Optional[Path] = typer.Option(None, help="TOML config (EvalRMConfig); flags override it"),
    set_: list[str] = typer.Option([], "--set", help="override any config field: KEY=VALUE"),
) -> None:
    """Pairwise accuracy of a reward model: overall, per negative source, per env, and cross-domain."""
    from agentcritic.config import load_config
    from agentcritic.rm.evaluation import format_report
    from agentcritic.rm.stages import EvalRMConfig
    from agentcritic.rm.stages import eval_rm as run

    flags = {
        "model": str(model) if model is not None else None,
        "output": str(output) if output is not None else None,
        "batch_size": batch_size,
        "plot": plot,
        "cross_domain": cross_domain,
    }
    overrides = _list_override("data", [str(d) for d in data]) + overrides_from_flags(flags, set_)
    try:
        cfg = load_config(EvalRMConfig, config, overrides)
        report, path = run(cfg)
        if cfg.plot:  # rm/ writes data; report/ draws
            from agentcritic.report.plots import write_score_histograms

            report["plot"] = str(write_score_histograms(report, path.with_suffix(".png")))
    except user_errors() as exc:
        fail(exc)
        return
    typer.echo(format_report(report))
    typer.secho(f"\nreport: {path}" + (f", plot: {report['plot']}" if report.get("plot") else ""), bold=True)


@app.command("serve-rm")
def serve_rm(
    model: Optional[Path] = typer.Option(None, help="train-rm run folder or saved model folder"),
    host: Optional[str] = typer.Option(None, help="interface to bind (default 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help="TCP port (default 8765)"),
    token_env: Optional[str] = typer.Option(
        None, "--token-env", help="require a bearer token, read from this environment variable"
    ),
    config: Optional[Path] = typer.Option(None, help="TOML config (ServeRMConfig); flags override it"),
    set_: list[str] = typer.Option([], "--set", help="override any config field: KEY=VALUE, e.g. max_batch=64"),
) -> None:
    """Serve a reward model: POST /v1/score, GET /health, and ARMAP's POST /api/generate."""
    from agentcritic.config import load_config
    from agentcritic.rm.stages import ServeRMConfig
    from agentcritic.rm.stages import serve_rm as run

    flags = {
        "model": str(model) if model is not None else None,
        "host": host,
        "port": port,
        "token_env": token_env,
        "require_token": True if token_env is not None else None,
    }
    try:
        cfg = load_config(ServeRMConfig, config, overrides_from_flags(flags, set_))
        run(cfg)
    except user_errors() as exc:
        fail(exc)
