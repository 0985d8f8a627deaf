"""The text-environment contract: Gymnasium's shape with text in and text out.

Subclasses implement five small hooks (``_task_ids``, ``_reset``, ``_step``, ``_admissible``,
``_expert``); this class owns everything every env must do the same way: step counting and the
``max_steps`` truncation, the answer to an action after the episode ended, the action history that
``restore``/``snapshot`` and pickling rely on, and what reward models see of an observation
(``rm_observation``; the text itself is :func:`agentcritic.rendering.render`'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from agentcritic.errors import AgentCriticError

SPLITS: tuple[str, ...] = ("train", "dev", "test")


class EnvError(AgentCriticError, ValueError):
    """A caller error: unknown split, unknown task id, step before reset."""


@dataclass
class StepOutcome:
    """What a subclass's ``_step`` returns.

    ``score`` is the episode's score so far in [0, 1] (the env's own metric); the base class turns
    its increase into the step reward, so the rewards of an episode sum to its final score.
    """

    observation: str
    score: float
    done: bool
    valid: bool = True
    success: bool | None = None
    extra: dict[str, Any] | None = None


class TextEnv:
    """Base class of every environment. See ``architecture.md`` (Environments)."""

    name: ClassVar[str] = "base"
    splits: ClassVar[tuple[str, ...]] = SPLITS
    #: (name, kwargs) this env was made from by ``envs.make``, so more of it can be made; None otherwise
    made_from: tuple[str, dict[str, Any]] | None = None

    def __init__(self, max_steps: int = 30, **kwargs: Any) -> None:
        try:
            self.max_steps = int(max_steps)
        except (TypeError, ValueError):
            raise EnvError(f"{self.name}: max_steps must be a whole number, got {max_steps!r}; "
                           "correct --max-steps or env_kwargs.max_steps") from None
        # Constructor arguments are kept so a pickled env can be rebuilt elsewhere (process pools,
        # Ray); envs wrapping a JVM cannot pickle their process, so they rebuild and replay.
        self._init_kwargs: dict[str, Any] = {"max_steps": self.max_steps, **kwargs}
        self.task_id: str | None = None
        self.seed: int | None = None
        self.instruction: str = ""
        self.actions: list[str] = []
        self.first_observation: str = ""
        self.last_observation: str = ""
        self.score: float = 0.0
        self.success: bool = False
        self.terminated: bool = False
        self.truncated: bool = False
        self.invalid_actions: int = 0
        self._all_ids: set[str] | None = None

    # ----------------------------------------------------------------- hooks for subclasses
    def _task_ids(self, split: str) -> list[str]:
        raise NotImplementedError

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        """Start ``task_id``; return (first observation, instruction)."""
        raise NotImplementedError

    def _step(self, action: str) -> StepOutcome:
        raise NotImplementedError

    def _admissible(self) -> list[str] | None:
        """The actions a chooser may pick from now (None where the env cannot list them)."""
        return None

    def _expert(self) -> str | None:
        return None

    def _action_pattern(self) -> str | None:
        """A regular expression every well-formed action now fully matches (None: the env offers none)."""
        return None

    def _extra_info(self) -> dict[str, Any]:
        return {}

    # ----------------------------------------------------------------- public API
    def task_ids(self, split: str = "test", limit: int | None = None) -> list[str]:
        """The split's task ids in their fixed order; ``limit``: the first N of them."""
        if split not in self.splits:
            raise EnvError(f"{self.name}: unknown split {split!r}; valid splits are {list(self.splits)}")
        ids = list(self._task_ids(split))
        return ids[:limit] if limit else ids

    def all_task_ids(self) -> set[str]:
        # Splits are fixed for an instance, so the union is built once (reset checks every id).
        if getattr(self, "_all_ids", None) is None:
            out: set[str] = set()
            for split in self.splits:
                out.update(self._task_ids(split))
            self._all_ids = out
        return set(self._all_ids)

    def check_task_id(self, task_id: str) -> str:
        task_id = str(task_id)
        if not self.is_task_id(task_id):
            sample = self._task_ids(self.splits[-1])[:5]
            raise EnvError(
                f"{self.name}: unknown task id {task_id!r}; see `agentcritic envs` or "
                f"env.task_ids(split) for valid ids (e.g. {sample})"
            )
        return task_id

    def is_task_id(self, task_id: str) -> bool:
        self.all_task_ids()
        return task_id in self._all_ids

    def reset(
        self,
        *,
        task_id: str | None = None,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        if task_id is None:
            task_id = (options or {}).get("task_id") or self._task_ids(self.splits[-1])[0]
        task_id = self.check_task_id(task_id)
        self.task_id, self.seed = task_id, seed
        self.actions = []
        self.score, self.success = 0.0, False
        self.terminated = self.truncated = False
        self.invalid_actions = 0
        obs, instruction = self._reset(task_id, seed)
        self.instruction = instruction
        self.first_observation = self.last_observation = obs
        return obs, self.info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.task_id is None:
            raise EnvError(f"{self.name}: call reset() before step()")
        action = str(action).strip()
        if self.terminated or self.truncated:
            obs = "The episode has ended; call reset() to start another."
            return obs, 0.0, self.terminated, self.truncated, self.info(invalid=True)
        self.actions.append(action)
        outcome = self._step(action)
        reward = max(0.0, float(outcome.score) - self.score)
        self.score = max(self.score, float(outcome.score))
        if outcome.success is not None:
            self.success = bool(outcome.success)
        if not outcome.valid:
            self.invalid_actions += 1
        self.terminated = bool(outcome.done)
        self.truncated = not self.terminated and len(self.actions) >= self.max_steps
        self.last_observation = outcome.observation
        info = self.info(invalid=not outcome.valid)
        if outcome.extra:
            info.update(outcome.extra)
        return outcome.observation, reward, self.terminated, self.truncated, info

    def info(self, invalid: bool = False) -> dict[str, Any]:
        done = self.terminated or self.truncated
        info: dict[str, Any] = {
            "task_id": self.task_id,
            "instruction": self.instruction,
            "admissible_actions": [] if done else self._admissible(),
            "score": self.score,
            "success": self.success,
            "steps": len(self.actions),
            "invalid": invalid,
        }
        info.update(self._extra_info())
        return info

    def admissible_actions(self) -> list[str] | None:
        return None if self.task_id is None else self._admissible()

    def action_pattern(self) -> str | None:
        """The grammar of one action in the current state, as a regular expression; None where the env
        offers none (or no episode is running).

        A language-model policy may decode under it (``generate(pattern=)``, constrained decoding) so that
        every reply is a well-formed action; the env still judges the action. The expression keeps to a
        subset every backend can apply: literals (escaped with :func:`regex_literal`), ``[]`` classes,
        ``(?:…|…)`` groups, ``?``, ``*``, ``+`` and ``{m,n}``; no ``\\d``/``\\s`` shorthands, lookarounds or
        backreferences, and no ``"`` or backslash among what it matches (JSON-schema backends).
        """
        if self.task_id is None or self.terminated or self.truncated:
            return None
        return self._action_pattern()

    def expert_action(self) -> str | None:
        if self.task_id is None or self.terminated or self.truncated:
            return None
        return self._expert()

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to rebuild the current state with :meth:`restore`."""
        return {"task_id": self.task_id, "seed": self.seed, "actions": list(self.actions)}

    def restore(
        self,
        actions: list[str] | dict[str, Any],
        *,
        task_id: str | None = None,
        seed: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Reset to the task and replay ``actions``; return the last observation and info.

        Accepts an action list (the current task) or a :meth:`snapshot` dict.
        """
        if isinstance(actions, dict):
            task_id, seed, actions = actions["task_id"], actions.get("seed"), actions["actions"]
        task_id = task_id if task_id is not None else self.task_id
        seed = seed if seed is not None else self.seed
        obs, info = self.reset(task_id=task_id, seed=seed)
        for action in actions:
            obs, _, terminated, truncated, info = self.step(action)
            if terminated or truncated:
                break
        return obs, info

    def trajectory_meta(self) -> dict[str, Any]:
        return {"first_observation": self.first_observation, "seed": self.seed}

    @classmethod
    def rm_observation(cls, observation: str, last: bool) -> str:
        """An observation as a reward model reads it (``last``: the episode's final one).

        Envs override this to drop what would let a reward model read the verdict instead of
        judging the trajectory (game24's "Correct"), or text every page repeats (the shop's echo
        of the instruction). Class-level, so trajectories render without building an env (see
        :func:`agentcritic.rendering.render`).
        """
        return observation

    @classmethod
    def helper_view(cls, state_text: str) -> str:
        """The state as a helper that pools what it learns across tasks reads it (``helper.view = "env"``).

        Default: unchanged. An env overrides it to keep what decides whether help pays now and to
        name the task's things by their role (``household``: "room A" wherever the same room is
        meant), so a small model sees one pattern where every task had its own words. Only the text
        the agent was shown goes in, never the true state. Class-level, like :meth:`rm_observation`.
        """
        return state_text

    def as_gymnasium(self, *, split: str = "train", render_mode: str | None = None, **kwargs: Any) -> Any:
        """This env as a ``gymnasium.Env`` with text spaces (see :mod:`agentcritic.envs.gym_env`):
        ``reset(seed=, options={"task_id": ...})``, ``info["admissible_actions"]``; a reset that
        names no task draws one from ``split``."""
        from agentcritic.envs.gym_env import TextEnvAsGymnasium  # gymnasium only when asked for

        return TextEnvAsGymnasium(self, split=split, render_mode=render_mode, **kwargs)

    # ----------------------------------------------------------------- pickling
    def __reduce__(self):  # type: ignore[override]
        # the name it was made by (``envs.make("pkg.mod:Class")``) travels with it
        return (_rebuild_env, (type(self), self._init_kwargs, self.snapshot(), vars(self).get("name")))

    def close(self) -> None:
        """Release external resources (JVMs); safe to call twice."""


def regex_literal(text: str) -> str:
    """``text`` as a regular expression matching exactly it, escaping only the characters that need it
    (``re.escape`` also escapes ``-`` and spaces, which some grammar converters do not read back)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


_REGEX_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def _rebuild_env(cls: type[TextEnv], kwargs: dict[str, Any], snapshot: dict[str, Any],
                 name: str | None = None) -> TextEnv:
    env = cls(**kwargs)
    if name is not None:
        env.name = name  # type: ignore[misc]
    if snapshot.get("task_id") is not None:
        env.restore(snapshot)
    return env
