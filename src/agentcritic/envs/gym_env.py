"""Any :class:`TextEnv` as a ``gymnasium.Env`` (:meth:`TextEnv.as_gymnasium`), so RL libraries drive it.

Observations and actions are text (:class:`AnyText` spaces). ``reset(seed=, options=)`` starts a
task: ``options={"task_id": ...}`` names it, else one is drawn from ``split`` (``options={"split":
...}`` or the wrapper's) with the env's seeded ``np_random``, so the same seed starts the same
episode. ``info`` is the TextEnv's, a fresh copy each call: ``instruction``, ``admissible_actions``
(the actions a chooser may pick from; any text is a valid action), ``score``, ``success``, ``task_id``.

Importing this module registers ``agentcritic/TextEnv-v0`` with gymnasium:
``gymnasium.make("agentcritic/TextEnv-v0", env="game24")`` (or, without importing it first,
``gymnasium.make("agentcritic.envs.gym_env:agentcritic/TextEnv-v0", env="game24")``); the env's
own keyword arguments follow ``env`` (its maker is :func:`agentcritic.envs.gym_bridge.make_gymnasium`).
This module imports nothing of ``agentcritic.envs``: ``TextEnv.as_gymnasium`` imports it.

gymnasium's ``check_env`` passes on every built-in env, with one deliberate difference from a plain
``gymnasium.spaces.Text``: its ``contains`` accepts only characters of its charset, but a text env's
observations echo what the agent typed (game24 answers ``12 × 2 = 24`` with it) and hold whatever
its pages hold, so :class:`AnyText` accepts any string within its length bounds and uses the charset
(printable ASCII) only to ``sample``. ``gymnasium.spaces.flatten`` maps each character to its index
in the charset, so it applies to ASCII text only; text envs are read by language models, not
flattened.
"""

from __future__ import annotations

import copy
import string
from typing import Any

import gymnasium
from gymnasium import spaces

from agentcritic.errors import AgentCriticError

GYMNASIUM_ID = "agentcritic/TextEnv-v0"
#: what ``sample()`` draws from: printable ASCII, the whitespace of a typed action aside
SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " "
RESET_OPTIONS = ("task_id", "split")


class GymnasiumEnvError(AgentCriticError, ValueError):
    """A caller error of the gymnasium view: an unknown reset option or render mode."""


class AnyText(spaces.Text):
    """A ``Text`` space of any characters: ``x in space`` for every string of allowed length."""

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"AnyText({self.min_length}, {self.max_length})"


class TextEnvAsGymnasium(gymnasium.Env):
    """A ``gymnasium.Env`` over a ``TextEnv``.

    ``split``: where ``reset`` draws tasks from when the options name none. Closing this env closes
    the TextEnv.
    """

    # ansi: the current observation; render_fps only paces human viewers (one page a step)
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        env: Any,
        *,
        split: str = "train",
        render_mode: str | None = None,
        max_observation_length: int = 1_000_000,
        max_action_length: int = 256,
    ) -> None:
        if not all(callable(getattr(env, m, None)) for m in ("task_ids", "reset", "step", "admissible_actions")):
            raise GymnasiumEnvError(f"TextEnvAsGymnasium wraps an agentcritic TextEnv, got {type(env).__name__}; "
                                    "call as_gymnasium() on a TextEnv, or make one by name with gymnasium.make("
                                    f"{GYMNASIUM_ID!r}, env=NAME)")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise GymnasiumEnvError(f"{env.name}: render_mode {render_mode!r} is not one of "
                                    f"{self.metadata['render_modes']} (ansi renders the current observation)")
        self.text_env = env
        self.split = split
        env.task_ids(split)  # an unknown split is an error now, not at the first reset
        self.render_mode = render_mode
        self.observation_space = AnyText(max_observation_length, min_length=0, charset=SAMPLE_CHARSET)
        self.action_space = AnyText(max_action_length, min_length=1, charset=SAMPLE_CHARSET)
        self._tasks: dict[str, list[str]] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise GymnasiumEnvError(f"{self.text_env.name}: reset options {unknown} are unknown; "
                                    f"the options are {list(RESET_OPTIONS)}")
        task_id = options.get("task_id")
        if task_id is None:
            split = options.get("split", self.split)
            if split not in self._tasks:
                self._tasks[split] = self.text_env.task_ids(split)
            tasks = self._tasks[split]
            task_id = tasks[int(self.np_random.integers(len(tasks)))]
        # The TextEnv's own seed: the one given, else drawn from np_random (seeded runs repeat).
        text_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        obs, info = self.text_env.reset(task_id=str(task_id), seed=text_seed)
        return obs, copy.deepcopy(info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.text_env.step(str(action))
        return obs, float(reward), bool(terminated), bool(truncated), copy.deepcopy(info)

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self.text_env.last_observation
        return None

    def close(self) -> None:
        self.text_env.close()


if GYMNASIUM_ID not in gymnasium.registry:
    gymnasium.register(id=GYMNASIUM_ID, entry_point="agentcritic.envs.gym_bridge:make_gymnasium")
