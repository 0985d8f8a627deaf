"""The shared Typer app and the helpers every command module uses.

Heavy modules (envs with JVMs, torch) are imported inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="agentcritic",
    help="Learned judgement for LLM agents: reward models without labels, planning, and when to ask for help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_EXTRA_USER_ERRORS: list[tuple[str, str]] = []


def register_user_error(module: str, name: str) -> None:
    """Mark ``module.name`` as an error a user can cause (printed as one line, never a traceback)."""
    if (module, name) not in _EXTRA_USER_ERRORS:
        _EXTRA_USER_ERRORS.append((module, name))


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can cause; they are printed as one clear message, never a traceback."""
    import importlib

    from agentcritic.agents import AgentError
    from agentcritic.config import ConfigError
    from agentcritic.envs import EnvError
    from agentcritic.store import StoreError
    from agentcritic.types import RecordError

    extra = tuple(getattr(importlib.import_module(m), n) for m, n in _EXTRA_USER_ERRORS)
    return (ConfigError, EnvError, StoreError, RecordError, AgentError, *extra)


def fail(exc: BaseException) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


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
