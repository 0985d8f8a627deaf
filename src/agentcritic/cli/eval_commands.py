"""Commands over whole runs: ``evaluate``, ``report``, ``run`` (a stage list) and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import app, fail, finish, overrides_from_flags, run_stage_command, toml_value, user_errors


@app.command()
def evaluate(
    out: Path = typer.Option(..., help="run folder (re-running the same command resumes it)"),
    config: Optional[Path] = typer.Option(None, help="TOML config (EvalConfig); flags override it"),
    env: list[str] = typer.Option([], "--env", help="env to evaluate on (repeatable)"),
    split: list[str] = typer.Option([], "--split", help="split(s): train | dev | test (repeatable)"),
    limit: Optional[int] = typer.Option(None, help="first N tasks of each split"),
    policy: Optional[str] = typer.Option(None, help="smollm2 | hf | openai | llamacpp | expert | random"),
    mode: Optional[str] = typer.Option(None, help="LLM policies: choose | generate"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai policy: server URL"),
    model: Optional[str] = typer.Option(None, help="openai: model name; hf/llamacpp: model path"),
    method: list[str] = typer.Option([], "--method", help="greedy | sampling | best_of_n | reflexion | mcts (repeatable)"),
    rm: Optional[Path] = typer.Option(None, "--rm", help="target: a train-rm run folder or saved reward model"),
    env_target: bool = typer.Option(False, "--env-target", help="target: the env's true reward (an oracle)"),
    samples: Optional[int] = typer.Option(None, help="seeds per task"),
    seed: Optional[int] = typer.Option(None, help="base seed"),
    workers: Optional[int] = typer.Option(None, help="parallel worker processes"),
    executor: Optional[str] = typer.Option(None, help="pool | ray"),
    set_: list[str] = typer.Option([], "--set", help="override any config field: KEY=VALUE (repeatable)"),
) -> None:
    """Run planning methods over env task splits into RUN/results.jsonl and print the results table."""
    from agentcritic.config import load_config
    from agentcritic.evaluate import EvalConfig, load_records
    from agentcritic.report.tables import results_table, to_markdown

    flags: dict[str, object] = {
        "limit": limit, "policy": policy, "mode": mode, "samples": samples, "seed": seed, "workers": workers,
        "executor": executor, "llm.base_url": base_url,
    }
    if model is not None:
        flags["llm.path" if policy in ("hf", "llamacpp") else "llm.model"] = model
    extra = []
    if env:
        extra.append("envs=[" + ", ".join(toml_value(e) for e in env) + "]")
    if split:
        extra.append("split=[" + ", ".join(toml_value(s) for s in split) + "]")
    if method:
        extra.append("methods=[" + ", ".join(f"{{method = {toml_value(m)}}}" for m in method) + "]")
    if rm is not None:
        extra.append(f'target={{kind = "rm", rm = {toml_value(str(rm.resolve()))}}}')
    elif env_target:
        extra.append('target={kind = "env"}')
    try:
        cfg = load_config(EvalConfig, config, overrides_from_flags(flags, [*extra, *set_]))
        outcome = run_stage_command("evaluate", cfg, out)
        table = results_table(load_records(out / "results.jsonl"))
    except user_errors() as exc:
        fail(exc)
        return
    typer.echo(to_markdown(table))
    if outcome is None:
        return
    summary = outcome.summary
    typer.echo(f"{summary['records']} records in {out / 'results.jsonl'} "
               f"({summary['written']} new, {summary['resumed_from']} resumed)")
    finish(outcome)


@app.command()
def report(
    run: Path = typer.Argument(..., help="run folder (its sub-folders are searched too)"),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default RUN/report.html)"),
) -> None:
    """Write RUN/report.html (one self-contained file) and print the results table as Markdown."""
    from agentcritic.report.html import build_report

    try:
        result = build_report(run, out)
    except user_errors() as exc:
        fail(exc)
        return
    if result.markdown:
        typer.echo(result.markdown)
    typer.secho(f"Report: {result.path}", bold=True)


@app.command(name="run")
def run_config(
    config: Path = typer.Argument(..., help="pipeline TOML with [[stages]] (see configs/)"),
    out: Optional[Path] = typer.Option(None, help="run folder (default: the config's out)"),
    stage: list[str] = typer.Option([], "--stage", help="run only these stages (by name; repeatable)"),
    set_: list[str] = typer.Option([], "--set", help="override: out=… or STAGE.field=VALUE (repeatable)"),
) -> None:
    """Run a list of stages from a config; each stage writes its own sub-folder and is skipped when done."""
    from agentcritic.pipeline import load_pipeline, run_pipeline

    try:
        pipeline, configs = load_pipeline(config, set_)
        run_pipeline(pipeline, configs, out=out, only=stage or None, echo=typer.echo)
    except user_errors() as exc:
        fail(exc)
        return
    run_dir = out or Path(pipeline.out or "")
    html = run_dir / "report.html"
    if html.exists():
        typer.secho(f"Report: {html}", bold=True)
    typer.echo(f"Run folder: {run_dir}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="run folder of the demo (re-running resumes it)"),
    config: Optional[Path] = typer.Option(None, help="pipeline TOML to run instead of the shipped configs/demo.toml"),
    workers: Optional[int] = typer.Option(None, help="parallel worker processes for every stage"),
    set_: list[str] = typer.Option([], "--set", help="override: STAGE.field=VALUE (repeatable)"),
) -> None:
    """The main job: explore → synthesize → train RM → evaluate 5 methods → report, on game24 and shop, offline."""
    from agentcritic.demo import run_demo

    try:
        report_path = run_demo(out, config=config, workers=workers, overrides=set_, echo=typer.echo)
    except user_errors() as exc:
        fail(exc)
        return
    typer.secho(f"Report: {report_path}", bold=True)
