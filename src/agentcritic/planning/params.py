"""Planner parameters are data: one pydantic model per planner, validated with clear errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from agentcritic.config import StageConfig

C = TypeVar("C", bound=StageConfig)


def parse_params(config: type[C], method: str, params: dict[str, Any]) -> C:
    """``config(**params)``; an unknown or invalid parameter raises ``ValueError`` naming the valid ones."""
    valid = sorted(config.model_fields)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"{method}: unknown parameter(s) {unknown}; valid parameters are {valid}")
    try:
        return config(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(params)'}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
        raise ValueError(f"{method}: invalid parameter(s): {problems}") from None


def describe(config: type[StageConfig]) -> dict[str, str]:
    """Parameter name → ``"default — description"``, for help texts."""
    return {
        name: f"{field.default!r} — {field.description or ''}".rstrip(" —")
        for name, field in config.model_fields.items()
    }
