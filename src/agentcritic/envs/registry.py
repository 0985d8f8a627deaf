"""Environment registry: a name maps to ``module:Class``, imported only when made."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from agentcritic.envs.base import EnvError, TextEnv

_REGISTRY: dict[str, str] = {
    "game24": "agentcritic.envs.game24:Game24Env",
    "shop": "agentcritic.envs.shop.env:ShopEnv",
    "scienceworld": "agentcritic.envs.scienceworld:ScienceWorldEnv",
    "textworld": "agentcritic.envs.textworld:TextWorldEnv",
    "household": "agentcritic.envs.household:HouseholdEnv",
}


def register(name: str, entry_point: str | type[TextEnv]) -> None:
    """Register an env under ``name``; ``entry_point`` is a class or ``"module:Class"``."""
    if isinstance(entry_point, type):
        entry_point = f"{entry_point.__module__}:{entry_point.__qualname__}"
    _REGISTRY[name] = entry_point


def names() -> list[str]:
    return sorted(_REGISTRY)


def env_class(name: str) -> type[TextEnv]:
    if name not in _REGISTRY:
        raise EnvError(f"unknown env {name!r}; registered envs are {names()}")
    module, _, attr = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def options(name: str) -> list[str] | None:
    """The keyword arguments the env ``name`` takes (``env_kwargs`` in a config); None: any."""
    params = inspect.signature(env_class(name).__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def make(name: str, **kwargs: Any) -> TextEnv:
    """Build a registered env: ``make("game24")``, ``make("shop", num_products=50_000)``.

    A keyword the env does not take is an :class:`EnvError` that lists the ones it does.
    """
    valid = options(name)
    unknown = sorted(set(kwargs) - set(valid)) if valid is not None else []
    if unknown:
        raise EnvError(
            f"env {name!r} takes no option {', '.join(map(repr, unknown))}; its options are {valid}. "
            f"Correct or remove {', '.join('env_kwargs.' + k for k in unknown)} (in the --config file or a --set)"
        )
    return env_class(name)(**kwargs)
