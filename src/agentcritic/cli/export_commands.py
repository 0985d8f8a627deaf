"""``agentcritic export``: a run's data as TRL datasets, in the text the reward model reads."""

from __future__ import annotations

from pathlib import Path

import typer

from agentcritic.cli.app import app

EXPORT_HELP = "\n\n".join([
    "Export a run's data as rows TRL trains on, rendered exactly as agentcritic's reward model reads them.",
    "RUN is a synthesize run folder (its preferences.jsonl), a train-rm folder (the pairs it trained on and "
    "held out, with a 'split' column: train / test), a collect or rollout folder (its episodes), or a JSONL "
    "file of preference pairs, trajectories or collected episodes.",
    "--format trl-preference: rows {chosen, rejected, source}, implicit prompt (each side is the whole "
    "rendered intent and trajectory), for trl.RewardTrainer and DPOTrainer. Needs preference pairs.",
    "--format trl-stepwise: rows {prompt, completions, labels}; the prompt is the intent and the first "
    "observation, one completion per step, every step labelled with the episode's success (Monte-Carlo "
    "labels), for TRL's PRM trainer. Needs trajectories: a collect or rollout folder, a synthesize folder's "
    "exploration, or a JSONL file of them.",
    "--format parquet: the rows the RUN holds (preference rows for pairs, stepwise rows for trajectories) "
    "as one Parquet file.",
    "trl-* exports are JSON lines unless --out ends in .parquet. Without --out the file goes into a RUN "
    "folder (RUN/export-trl-preference.jsonl, RUN/export.parquet) or beside a RUN file "
    "(NAME.trl-stepwise.jsonl, NAME.parquet). Load it with datasets.load_dataset('parquet', data_files=FILE) "
    "or load_dataset('json', data_files=FILE).",
])


@app.command("export", help=EXPORT_HELP)
def export_command(
    run: Path = typer.Argument(..., help="a synthesize, train-rm, collect or rollout folder, or a JSONL file"),
    format: str = typer.Option("trl-preference", "--format", help="trl-preference | trl-stepwise | parquet"),
    out: Path | None = typer.Option(None, "--out", help="the file to write; default beside RUN"),
) -> None:
    from agentcritic.export import export_run

    result = export_run(run, format, out)
    splits = "".join(f", {n} {name}" for name, n in sorted(result.splits.items()))
    typer.echo(f"{result.rows} {result.kind} rows{splits} from {', '.join(result.sources)}")
    typer.echo(f"wrote {result.path}")
