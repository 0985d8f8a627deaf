"""Environment registry: a name maps to ``module:Class``, imported only when made."""

from __future__ import annotations

import importlib
from typing import Any

from agentcritic.envs.base import EnvError, TextEnv
from agentcritic.types import Trajectory

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


def rm_steps_text(trajectory: Trajectory) -> str:
    """A trajectory's text for a reward model, rendered the way its env renders it (see
    :meth:`TextEnv.rm_steps_text`), without building the env; an env that is not registered here
    gets the plain rendering."""
    cls = env_class(trajectory.env) if trajectory.env in _REGISTRY else TextEnv
    return cls.rm_steps_text(trajectory)


def make(name: str, **kwargs: Any) -> TextEnv:
    """Build a registered env: ``make("game24")``, ``make("shop", num_products=50_000)``."""
    return env_class(name)(**kwargs)
