"""The main job: ARMAP end to end on the embedded models, offline, as a pipeline of stages.

``configs/demo.toml`` (shipped inside the package too, so an installed ``agentcritic`` finds it)
lists the stages: synthesize reward data on game24 and shop (explore → refine intents →
negatives), train the MiniLM reward model on both, evaluate Greedy, Sampling, ARMAP-R, ARMAP-B and
ARMAP-M with the SmolLM2 policy on a test subset of each; then the self-regulation half on
``household`` (collect with random help → PRM → budgeted DP → MiniLM helper → every method ×
budget on held-out tasks); and write the HTML report. Every stage
resumes, so an interrupted demo re-run with the same ``--out`` picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from agentcritic.pipeline import load_pipeline, run_pipeline

DEMO_CONFIG = "demo.toml"


def shipped_config(name: str = DEMO_CONFIG) -> Path:
    """The path of a config shipped in the package (``agentcritic/configs/NAME``)."""
    path = Path(str(resources.files("agentcritic").joinpath("configs", name)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped config is missing; reinstall agentcritic")
    return path


def run_demo(
    out: str | Path = "runs/demo",
    config: str | Path | None = None,
    workers: int | None = None,
    overrides: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run (or resume) the demo pipeline into ``out``; return the path of its HTML report.

    ``workers`` sets every stage's worker processes (stages without that setting keep theirs);
    ``overrides`` are ``STAGE.field=VALUE`` as for ``agentcritic run``.
    """
    path = Path(config) if config is not None else shipped_config()
    pipeline, _ = load_pipeline(path)
    extra = list(overrides or [])
    if workers is not None:
        from agentcritic.pipeline import STAGE_KINDS, import_attr

        for spec in pipeline.stages:
            model = import_attr(STAGE_KINDS[spec.kind].config, f"stage {spec.name!r}")
            if "workers" in model.model_fields:
                extra.insert(0, f"{spec.name}.workers={workers}")
    pipeline, configs = load_pipeline(path, extra)
    run_pipeline(pipeline, configs, out=out, echo=echo)
    report = Path(out) / "report.html"
    return report


def summary_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of rollout summaries (:func:`agentcritic.rollouts.summarise` rows with env and
    policy), as ``benchmarks/bench_policy_success.py`` prints it."""
    lines = [
        "| env | policy | episodes | success | mean score | mean steps | invalid actions |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['policy']} | {r['episodes']} | {r['success_rate']:.1%} | "
            f"{r['mean_score']:.3f} | {r['mean_steps']:.1f} | {r['invalid_actions']} |"
        )
    return "\n".join(lines) + "\n"
