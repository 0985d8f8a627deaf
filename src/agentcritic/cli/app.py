"""The shared Typer app and the helpers every command module uses.

Heavy modules (envs with JVMs, torch) are imported inside the commands so ``--help`` is instant.
Every command runs inside :class:`UserErrorGroup`, which turns an
:class:`~agentcritic.errors.AgentCriticError` into one paragraph on stderr and exit status 2, so a
command body needs no ``try``/``except`` of its own.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from agentcritic.errors import AgentCriticError

#: exit status of a command stopped by an error the user can fix (Click uses 2 for bad usage too)
USER_ERROR_EXIT = 2


class UserErrorGroup(TyperGroup):
    """The command group: runs a command and prints an error the user caused instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:  # ctx: Typer's Click context
        try:
            return super().invoke(ctx)
        except AgentCriticError as exc:
            fail(exc)


app = typer.Typer(
    name="agentcritic",
    help="Learned judgement for LLM agents: reward models without labels, planning, and when to ask for help.",
    cls=UserErrorGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can cause; they are printed as one clear message, never a traceback."""
    return (AgentCriticError,)


def fail(exc: BaseException) -> NoReturn:
    """Print ``exc`` as one paragraph on stderr and stop with :data:`USER_ERROR_EXIT`."""
    typer.secho(f"error: {paragraph(exc)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(USER_ERROR_EXIT)


def paragraph(exc: BaseException) -> str:
    """The message of ``exc`` as one paragraph: no blank lines, and never empty."""
    lines = [line.rstrip() for line in str(exc).strip().splitlines() if line.strip()]
    return "\n".join(lines) or type(exc).__name__


def toml_value(value: object) -> str:
    """A Python value as a TOML literal, for ``KEY=VALUE`` overrides built from flags."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def overrides_from_flags(flags: dict[str, object], extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``KEY=VALUE`` overrides for the flags that were given (None = not given), then ``--set`` ones."""
    return [f"{k}={toml_value(v)}" for k, v in flags.items() if v is not None] + list(extra)


# Options several commands share (Typer reads each as a default, so one object serves them all).
OUT = typer.Option(..., help="run folder (re-running the same command resumes it)")
CONFIG = typer.Option(None, help="TOML config of the command's settings; flags override it")
SET = typer.Option([], "--set", help="override any config field: KEY=VALUE (repeatable)")
WORKERS = typer.Option(None, help="parallel worker processes")
EXECUTOR = typer.Option(None, help="pool (local processes) | ray")
CONCURRENCY = typer.Option(None, help="jobs at once on threads inside each worker, and requests a job keeps in "
                           "flight: for a served model (--policy openai), which answers many together")
SEED = typer.Option(None, help="base seed")
SPLIT = typer.Option(None, help="train | dev | test")
LIMIT = typer.Option(None, help="first N tasks of the split")
POLICY = typer.Option(None, help="expert | random | smollm2 | hf | openai | llamacpp")
MODE = typer.Option(None, help="LLM policies: choose | generate")
BASE_URL = typer.Option(None, "--base-url", help="openai: server URL, e.g. http://127.0.0.1:8000/v1")
MODEL = typer.Option(None, help="openai: model name; hf/llamacpp: model path")


def llm_flags(backend: str | None, base_url: str | None, model: str | None, prefix: str = "llm") -> dict[str, object]:
    """The ``--base-url`` / ``--model`` flags as the config keys of ``backend`` (a path for local models)."""
    key = "path" if backend in ("hf", "llamacpp") else "model"
    return {f"{prefix}.base_url": base_url, f"{prefix}.{key}": model}


def list_override(key: str, values: list[object]) -> list[str]:
    """``key=["a", "b"]`` for a repeatable flag that was given, nothing otherwise."""
    return [f"{key}=[{', '.join(toml_value(str(v)) for v in values)}]"] if values else []


def run_stage_command(kind: str, model: type, config: Any, overrides: list[str], out: Any,
                      describe: Any = None) -> Any:
    """Load ``model`` from ``config`` (a TOML path or None) and ``overrides``, run the stage through
    the stage contract (lock, config record, skip when done) and print what it did.

    ``describe(summary)`` gives the command's own lines for work it did; a stage done before prints
    its recorded headline instead. Every command ends with its error count (:func:`finish`).
    Returns the outcome, or None when the stage was done before.
    """
    from agentcritic.config import load_config
    from agentcritic.pipeline import run_kind
    from agentcritic.stage_results import read_result

    outcome = run_kind(kind, load_config(model, config, overrides), out)
    if outcome.skipped:
        try:
            headline = read_result(out).headline()
        except AgentCriticError:
            headline = ""
        typer.echo(f"{out}: this {kind} is done; nothing to do. {headline}".rstrip())
    elif describe is not None:
        for line in describe(outcome.summary):
            typer.echo(line)
    finish(outcome)
    return None if outcome.skipped else outcome


def finish(outcome: Any) -> None:
    """The lines every stage command ends with: its error count, its LLM failures, and work left to a re-run."""
    typer.echo(f"errors: {outcome.errors}")
    summary = getattr(outcome, "summary", None) or {}
    if summary.get("llm_calls"):
        failed = int(summary.get("llm_failures") or 0)
        where = f" on the {summary.get('llm_backend')} backend at {summary.get('llm_url')}" \
            if failed and summary.get("llm_url") else ""
        typer.echo(f"LLM failures: {failed} of {summary['llm_calls']} call(s){where}")
    if outcome.pending:
        typer.secho(f"{outcome.pending} item(s) failed outside the task (LLM server down or timed out, a worker "
                    "died); they are recorded, not done: re-run the same command to do them again",
                    fg=typer.colors.YELLOW, err=True)
