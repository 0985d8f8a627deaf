"""Text environments behind one API. ``make(name, **kwargs)`` builds one from the registry."""

from agentcritic.envs.base import SPLITS, EnvError, StepOutcome, TextEnv
from agentcritic.envs.check import EnvCheckError, EnvReport, check_env
from agentcritic.envs.registry import entries, env_class, make, names, register
from agentcritic.envs.gym_bridge import GymnasiumTextEnv, from_gymnasium  # noqa: F401  (gymnasium on use)

__all__ = ["SPLITS", "EnvError", "StepOutcome", "TextEnv", "env_class", "make", "names", "register",
           "EnvCheckError", "EnvReport", "check_env", "entries"]
