"""Commands over outcome reward models: ``train-rm``, ``eval-rm``, ``serve-rm``.

Each maps its flags onto a config of :mod:`agentcritic.rm.stages` (config file + ``--set``) and
calls the library; torch loads inside the commands only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from agentcritic.cli.app import CONFIG, OUT, SET, app, list_override, overrides_from_flags, run_stage_command


@app.command("train-rm")
def train_rm(
    data: list[Path] = typer.Option([], "--data", help="preferences.jsonl to train on (repeatable)"),
    out: Path = OUT,
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
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Train a reward model on preference pairs: checkpoints, held-out accuracy, a save_pretrained folder."""
    from agentcritic.rm.stages import TrainRMConfig

    flags = {"backbone": backbone, "max_length": max_length, "train.num_epochs": epochs,
             "train.batch_size": batch_size, "train.max_steps": max_steps, "train.learning_rate": learning_rate,
             "train.seed": seed}
    overrides = list_override("data", data) + list_override("eval_data", eval_data) + overrides_from_flags(flags, set_)

    def describe(metrics: dict[str, Any]) -> list[str]:
        tr, ev = metrics["train"], metrics.get("eval") or {}
        lines = [f"{out}: {tr['steps']} steps; {tr['n_train']} train pairs, {tr['n_eval']} held out, "
                 f"{tr['pairs_per_second']:.1f} pairs/s, loss {_num(tr.get('first_loss'))} -> "
                 f"{_num(tr.get('final_loss'))}"]
        if ev.get("n"):
            per = ", ".join(f"{k} {v['accuracy']:.3f} ({v['n']})" for k, v in ev.get("per_source", {}).items())
            lines.append(f"held-out accuracy {ev['accuracy']:.3f} on {ev['n']} pairs; per source: {per}")
        return [*lines, f"model: {Path(metrics['out']) / 'model'}"]

    run_stage_command("train-rm", TrainRMConfig, config, overrides, out, describe)


def _num(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


@app.command("eval-rm")
def eval_rm(
    model: Optional[Path] = typer.Option(None, help="train-rm run folder or saved model folder"),
    data: list[Path] = typer.Option([], "--data", help="preference files to evaluate on (repeatable)"),
    out: Optional[Path] = typer.Option(None, help="folder of this evaluation (default: eval-rm-<hash> beside the model)"),
    output: Optional[Path] = typer.Option(None, "--output", help="report path (default OUT/rm_eval.json)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="inputs per forward"),
    plot: Optional[bool] = typer.Option(None, "--plot/--no-plot", help="also write the histograms as a PNG"),
    cross_domain: Optional[bool] = typer.Option(
        None, "--cross-domain/--no-cross-domain", help="also train a fresh model per env and test it on the others"
    ),
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Pairwise accuracy of a reward model: overall, per negative source, per env, and cross-domain."""
    import json

    from agentcritic.rm.evaluation import format_report
    from agentcritic.rm.stages import EvalRMConfig

    flags = {"model": str(model) if model is not None else None, "output": str(output) if output is not None else None,
             "batch_size": batch_size, "plot": plot, "cross_domain": cross_domain}
    if out is None and model is None:
        from agentcritic.config import ConfigError

        raise ConfigError("eval-rm: give --out (the folder of this evaluation), or --model to put it beside the model")
    overrides = list_override("data", data) + overrides_from_flags(flags, set_)
    if out is None:  # beside the model (in its train-rm run folder, or next to a saved model folder), one
        # folder per evaluation asked for, so evaluating other data is a new folder and the same command resumes
        import hashlib

        asked = hashlib.sha1(json.dumps([str(config), overrides]).encode()).hexdigest()[:8]
        out = (model if (model / "model").is_dir() else model.parent) / f"eval-rm-{asked}"

    def describe(summary: dict[str, Any]) -> list[str]:
        where = Path(out) / summary["report"]  # relative to the stage folder (an absolute path stays as it is)
        report = json.loads(where.read_text("utf-8"))
        lines = [format_report(report), f"\nreport: {where}"]
        if plot:  # the stage writes data; report/ draws
            from agentcritic.report.plots import write_score_histograms

            lines[-1] += f", plot: {write_score_histograms(report, where.with_suffix('.png'))}"
        return lines

    run_stage_command("eval-rm", EvalRMConfig, config, overrides, out, describe)


@app.command("serve-rm")
def serve_rm(
    model: Optional[Path] = typer.Option(None, help="train-rm run folder or saved model folder"),
    host: Optional[str] = typer.Option(None, help="interface to bind (default 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help="TCP port (default 8765)"),
    token_env: Optional[str] = typer.Option(
        None, "--token-env", help="require a bearer token, read from this environment variable"
    ),
    config: Optional[Path] = CONFIG,
    set_: list[str] = SET,
) -> None:
    """Serve a reward model: POST /v1/score, GET /health, and ARMAP's POST /api/generate."""
    from agentcritic.config import load_config
    from agentcritic.rm.stages import ServeRMConfig
    from agentcritic.rm.stages import serve_rm as run

    flags = {"model": str(model) if model is not None else None, "host": host, "port": port, "token_env": token_env,
             "require_token": True if token_env is not None else None}
    cfg = load_config(ServeRMConfig, config, overrides_from_flags(flags, set_))
    run(cfg)
