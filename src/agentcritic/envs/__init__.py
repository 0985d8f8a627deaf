"""Text environments behind one API. ``make(name, **kwargs)`` builds one from the registry."""

from agentcritic.envs.base import SPLITS, EnvError, StepOutcome, TextEnv
from agentcritic.envs.registry import env_class, make, names, register

__all__ = ["SPLITS", "EnvError", "StepOutcome", "TextEnv", "env_class", "make", "names", "register"]
