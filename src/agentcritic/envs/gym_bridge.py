"""A Gymnasium env whose observations are text, as a :class:`TextEnv` (:func:`from_gymnasium`).

The other way, any ``TextEnv`` as a ``gymnasium.Env``, is :meth:`TextEnv.as_gymnasium`
(:mod:`agentcritic.envs.gym_env`). gymnasium is imported only when a gymnasium env is made, so
``import agentcritic.envs`` stays light.

How a gymnasium env maps onto the TextEnv contract:

- **tasks**: a task is what one ``reset`` makes. By default task ids are reset seeds (``tasks=100``:
  train is seeds 0–99, dev 100–199, test 200–299); with ``task_option="level"`` a task id goes to
  ``reset(options={"level": task_id}, seed=seed)`` instead, and ``tasks`` maps each split to its ids.
- **instruction**: ``instruction=`` (a string, or ``f(observation, info) -> str``), else
  ``info["instruction"]`` from the env's reset.
- **admissible actions**: ``info[admissible_key]`` (``"admissible_actions"`` by default) when the
  env reports them; an action outside the last list is counted invalid (it is still passed on).
  ``info["invalid"]``, when the env reports it, decides instead.
- **score and success**: ``info[score_key]`` when present, else the return so far over
  ``max_return``, clipped to [0, 1]; ``info["success"]`` when present, else score 1.
- **expert**: ``info[expert_key]`` when the env reports it.
- **truncation**: the env's own truncation (a ``TimeLimit``) truncates the episode; ``max_steps``
  defaults to the spec's ``max_episode_steps``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentcritic.envs.base import SPLITS, EnvError, StepOutcome, TextEnv

#: ``f(observation, info) -> str``: the instruction of an episode, from its reset
InstructionFn = Callable[[str, dict[str, Any]], str]


class GymnasiumTextEnv(TextEnv):
    """A ``gymnasium.Env`` with text observations and text actions behind the TextEnv contract.

    Subclass it with fixed arguments to make a ``module:Class`` env that workers can build::

        class MyEnv(GymnasiumTextEnv):
            def __init__(self, max_steps: int | None = None) -> None:
                super().__init__("MyText-v0", instruction="Reach the goal.", max_steps=max_steps)
    """

    name = "gymnasium"

    def __init__(
        self,
        env: Any,
        *,
        instruction: str | InstructionFn | None = None,
        tasks: int | Mapping[str, Sequence[str | int]] = 100,
        task_option: str | None = None,
        admissible_key: str = "admissible_actions",
        expert_key: str = "expert_action",
        score_key: str = "score",
        max_return: float = 1.0,
        max_steps: int | None = None,
        make_kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.env = _make_gymnasium(env, make_kwargs)
        spec = getattr(self.env, "spec", None)
        if max_steps is None:
            max_steps = getattr(spec, "max_episode_steps", None) or 30
        super().__init__(
            max_steps=max_steps, env=env, instruction=instruction, tasks=tasks, task_option=task_option,
            admissible_key=admissible_key, expert_key=expert_key, score_key=score_key,
            max_return=max_return, make_kwargs=dict(make_kwargs or {}), name=name,
        )
        self.name = name or (env if isinstance(env, str) else getattr(spec, "id", None)
                             or type(self.env.unwrapped).__name__)
        self._instruction = instruction
        self._task_option = task_option
        self._admissible_key, self._expert_key, self._score_key = admissible_key, expert_key, score_key
        if not max_return > 0:
            raise EnvError(f"{self.name}: max_return must be above 0, got {max_return!r}; it is the return "
                           "that counts as a full score")
        self._max_return = float(max_return)
        self._splits = _task_splits(self.name, tasks, by_seed=task_option is None)
        self.splits = tuple(self._splits)
        self._last_info: dict[str, Any] = {}
        self._return = 0.0
        self._env_truncated = False
        self._closed = False

    # ----------------------------------------------------------------- TextEnv hooks
    def _task_ids(self, split: str) -> list[str]:
        return list(self._splits[split])

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        if self._task_option is None:
            # the task id is the reset seed, so the episode's own seed has nothing left to vary
            obs, info = self.env.reset(seed=int(task_id))
        else:
            obs, info = self.env.reset(seed=0 if seed is None else int(seed),
                                       options={self._task_option: task_id})
        text = self._text(obs, "reset")
        self._last_info, self._return, self._env_truncated = dict(info), 0.0, False
        return text, self._instruction_of(text, info)

    def _step(self, action: str) -> StepOutcome:
        admissible = self._admissible()
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last_info = dict(info)
        self._return += float(reward)
        if self._score_key in info:
            score = float(info[self._score_key])
        else:
            score = self._return / self._max_return
        score = min(1.0, max(0.0, score))
        if "invalid" in info:
            valid = not info["invalid"]
        else:
            valid = admissible is None or action in admissible
        success = bool(info["success"]) if "success" in info else score >= 1.0
        self._env_truncated = bool(truncated) and not terminated
        return StepOutcome(observation=self._text(obs, "step"), score=score,
                           done=bool(terminated or truncated), valid=valid, success=success)

    def _admissible(self) -> list[str] | None:
        actions = self._last_info.get(self._admissible_key)
        return None if actions is None else [str(a) for a in actions]

    def _expert(self) -> str | None:
        action = self._last_info.get(self._expert_key)
        return None if action is None else str(action)

    # ----------------------------------------------------------------- contract
    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        ended = self.terminated or self.truncated
        obs, reward, terminated, truncated, info = super().step(action)
        if not ended and terminated and self._env_truncated:
            # the env's TimeLimit ended it: a truncation, as the env said, not an outcome
            self.terminated, self.truncated = False, True
            terminated, truncated = False, True
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.env.close()

    # ----------------------------------------------------------------- helpers
    def _text(self, obs: Any, method: str) -> str:
        if not isinstance(obs, str):
            raise EnvError(
                f"{self.name}: {method}() returned an observation of type {type(obs).__name__}, not text; "
                "from_gymnasium wraps envs whose observations are strings (wrap the env in a "
                "gymnasium.ObservationWrapper that turns its observations into text)"
            )
        return str(obs)

    def _instruction_of(self, obs: str, info: Mapping[str, Any]) -> str:
        if callable(self._instruction):
            return str(self._instruction(obs, dict(info)))
        if self._instruction is not None:
            return str(self._instruction)
        if info.get("instruction"):
            return str(info["instruction"])
        raise EnvError(
            f"{self.name}: the env gives no instruction (its reset info has no 'instruction'); pass "
            "instruction='...' (or a function of the first observation and info) to from_gymnasium"
        )


def from_gymnasium(env_or_id: Any, **kwargs: Any) -> GymnasiumTextEnv:
    """Wrap a ``gymnasium.Env`` (or an env id, made with ``gymnasium.make``) as a :class:`TextEnv`.

    ``kwargs`` are :class:`GymnasiumTextEnv`'s: ``instruction``, ``tasks``, ``task_option``,
    ``admissible_key``, ``expert_key``, ``score_key``, ``max_return``, ``max_steps``,
    ``make_kwargs`` (for ``gymnasium.make``) and ``name``.
    """
    return GymnasiumTextEnv(env_or_id, **kwargs)


def make_gymnasium(env: str, *, split: str = "train", render_mode: str | None = None,
                   max_observation_length: int = 1_000_000, max_action_length: int = 256,
                   **env_kwargs: Any) -> Any:
    """The env named ``env`` (``envs.make(env, **env_kwargs)``) as a ``gymnasium.Env``: what
    ``gymnasium.make("agentcritic/TextEnv-v0", env=...)`` calls."""
    from agentcritic.envs.registry import make

    return make(env, **env_kwargs).as_gymnasium(
        split=split, render_mode=render_mode, max_observation_length=max_observation_length,
        max_action_length=max_action_length,
    )


def _make_gymnasium(env: Any, make_kwargs: Mapping[str, Any] | None) -> Any:
    import gymnasium

    if isinstance(env, str):
        try:
            return gymnasium.make(env, **dict(make_kwargs or {}))
        except gymnasium.error.Error as exc:
            raise EnvError(
                f"gymnasium cannot make {env!r}: {exc}. Register the env with gymnasium.register, or "
                "name its module as 'package.module:EnvId' so gymnasium imports it first"
            ) from None
    if make_kwargs:
        raise EnvError("make_kwargs apply to an env id made with gymnasium.make; this env is already made")
    if not isinstance(env, gymnasium.Env):
        raise EnvError(
            f"from_gymnasium takes a gymnasium.Env or a gymnasium env id, got {type(env).__name__}; "
            "for an env of agentcritic's own contract, subclass TextEnv instead"
        )
    return env


def _task_splits(name: str, tasks: Any, *, by_seed: bool) -> dict[str, list[str]]:
    """Split name -> task ids (strings), in the order of :data:`SPLITS`."""
    if isinstance(tasks, bool) or not isinstance(tasks, (int, Mapping)):
        raise EnvError(f"{name}: tasks must be a number of tasks per split or a mapping split -> task ids, "
                       f"got {type(tasks).__name__}")
    if isinstance(tasks, int):
        if tasks < 1:
            raise EnvError(f"{name}: tasks must be at least 1 per split, got {tasks}")
        return {split: [str(i * tasks + k) for k in range(tasks)] for i, split in enumerate(SPLITS)}
    unknown = sorted(set(tasks) - set(SPLITS))
    if unknown:
        raise EnvError(f"{name}: tasks names unknown splits {unknown}; the splits are {list(SPLITS)}")
    splits = {split: [str(t) for t in tasks[split]] for split in SPLITS if split in tasks}
    seen: dict[str, str] = {}
    for split, ids in splits.items():
        if not ids:
            raise EnvError(f"{name}: split {split!r} has no tasks; give it some or leave it out of tasks")
        for task in ids:
            if task in seen:
                raise EnvError(f"{name}: task {task!r} is in both {seen[task]!r} and {split!r}; splits "
                               "must not share tasks (held-out data would leak)")
            seen[task] = split
            if by_seed and not task.isdigit():
                raise EnvError(f"{name}: task id {task!r} is not a reset seed (a whole number >= 0); task ids are seeds unless "
                               "task_option names the reset option that selects a task")
    return splits
