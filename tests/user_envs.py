"""Envs as a user writes them: about 40 lines on ``TextEnv``, used by class path
(``tests.user_envs:CounterEnv``) in the plugin and check-env tests, and broken copies that
``check_env`` must catch."""

from __future__ import annotations

import random

from agentcritic.envs import StepOutcome, TextEnv


class CounterEnv(TextEnv):
    """Count up to a target by adding 1, 2 or 3; overshooting ends the episode in failure."""

    name = "counter"

    def __init__(self, max_steps: int = 12, size: int = 12) -> None:
        super().__init__(max_steps=max_steps, size=size)
        self.size = size
        self.total = self.target = 0

    def _task_ids(self, split: str) -> list[str]:
        first = {"train": 0, "dev": 1, "test": 2}[split]
        return [f"count-{n}" for n in range(4 + first, 4 + 3 * self.size, 3)]

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        self.target = int(task_id.split("-")[1])
        self.total = random.Random(seed).randint(0, 2)  # a seeded start, so episodes differ by seed
        return f"The counter shows {self.total}.", f"make the counter show exactly {self.target}"

    def _step(self, action: str) -> StepOutcome:
        if action not in ("add 1", "add 2", "add 3"):
            return StepOutcome(f"Nothing happens: {action!r} is not an action here.", 0.0, False, valid=False)
        self.total += int(action[-1])
        done = self.total >= self.target
        win = self.total == self.target
        text = f"The counter shows {self.total}." + (" Exactly right!" if win else " Too far." if done else "")
        return StepOutcome(text, 1.0 if win else 0.0, done, success=win)

    def _admissible(self) -> list[str]:
        return ["add 1", "add 2", "add 3"]

    def _expert(self) -> str:
        return f"add {min(3, self.target - self.total)}"

    @classmethod
    def rm_observation(cls, observation: str, last: bool) -> str:
        return observation.replace(" Exactly right!", "")  # a reward model must not read the verdict


class UnseededCounterEnv(CounterEnv):
    """Broken: the start draws from the global random module, so seeds do not reproduce episodes."""

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        obs, instruction = super()._reset(task_id, seed)
        self.total = random.randint(0, 1000)
        return f"The counter shows {self.total}.", instruction


class RaisingCounterEnv(CounterEnv):
    """Broken: an action it does not understand raises instead of being answered."""

    def _step(self, action: str) -> StepOutcome:
        if action not in self._admissible():
            raise ValueError(f"bad action {action!r}")
        return super()._step(action)


def not_an_env() -> None:
    """Not a class at all: a class path to it must be refused."""


class NotAnEnv:
    """A class that is not a ``TextEnv``."""
