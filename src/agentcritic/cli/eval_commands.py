"""Commands over whole runs: ``evaluate``, ``report``, ``run`` (a stage list) and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import (
    BASE_URL, CONCURRENCY, CONFIG, EXECUTOR, MODE, MODEL, OUT, POLICY, SEED, SET, WORKERS, app, fail, list_override, llm_flags,
    overrides_from_flags, run_stage_command, toml_value, user_errors,
)


@app.command()
def evaluate(
    out: Path = OUT,
    config: Optional[Path] = CONFIG,
    env: list[str] = typer.Option([], "--env", help="env to evaluate on (repeatable)"),
    split: list[str] = typer.Option([], "--split", help="split(s): train | dev | test (repeatable)"),
    limit: Optional[int] = typer.Option(None, help="first N tasks of each split"),
    policy: Optional[str] = POLICY,
    mode: Optional[str] = MODE,
    base_url: Optional[str] = BASE_URL,
    model: Optional[str] = MODEL,
    method: list[str] = typer.Option([], "--method", help="greedy | sampling | best_of_n | reflexion | mcts (repeatable)"),
    rm: Optional[Path] = typer.Option(None, "--rm", help="target: a train-rm run folder or saved reward model"),
    env_target: bool = typer.Option(False, "--env-target", help="target: the env's true reward (an oracle)"),
    samples: Optional[int] = typer.Option(None, help="seeds per task"),
    seed: Optional[int] = SEED,
    workers: Optional[int] = WORKERS,
    concurrency: Optional[int] = CONCURRENCY,
    executor: Optional[str] = EXECUTOR,
    set_: list[str] = SET,
) -> None:
    """Run planning methods over env task splits into RUN/results.jsonl and print the results table."""
    from agentcritic.evaluate import EvalConfig, load_records
    from agentcritic.report.tables import results_table, to_markdown

    flags: dict[str, object] = {"limit": limit, "policy": policy, "mode": mode, "samples": samples, "seed": seed,
                                "workers": workers, "executor": executor, "concurrency": concurrency,
                                **llm_flags(policy, base_url, model)}
    extra = list_override("envs", env) + list_override("split", split)
    if method:
        extra.append("methods=[" + ", ".join(f"{{method = {toml_value(m)}}}" for m in method) + "]")
    if rm is not None:
        extra.append(f'target={{kind = "rm", rm = {toml_value(str(rm.resolve()))}}}')
    elif env_target:
        extra.append('target={kind = "env"}')

    def describe(summary: dict[str, object]) -> list[str]:
        return [to_markdown(results_table(load_records(out / "results.jsonl"))),
                f"{summary['records']} records in {out / 'results.jsonl'} "
                f"({summary['written']} new, {summary['resumed_from']} resumed)"]

    run_stage_command("evaluate", EvalConfig, config, overrides_from_flags(flags, [*extra, *set_]), out, describe)


@app.command()
def report(
    run: Path = typer.Argument(..., help="run folder (its sub-folders are searched too)"),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default RUN/report.html)"),
) -> None:
    """Write RUN/report.html (one self-contained file) and print the results table as Markdown."""
    from agentcritic.report.html import build_report

    result = build_report(run, out)
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

    pipeline, configs = load_pipeline(config, set_)
    run_pipeline(pipeline, configs, out=out, only=stage or None, echo=typer.echo)
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

    report_path = run_demo(out, config=config, workers=workers, overrides=set_, echo=typer.echo)
    typer.secho(f"Report: {report_path}", bold=True)
