"""A deterministic policy's actions, computed once per state.

A language model at temperature 0 on a deterministic env is a function of the task, the seed and
what was done so far. Episodes that share a prefix (collection that asks at step t in one episode
and at step t + 1 in the next; eval-helper's methods, which play the same task until they first
ask) would recompute the same actions. :class:`MemoAgent` looks each action up by (task, seed, the
steps so far with who took them) and calls the wrapped agent only for a state it has not seen, so
the counted LLM calls are the ones made.

>>> memo = ActionMemo()
>>> agent = MemoAgent(make_agent("smollm2", temperature=0.0), memo)
"""

from __future__ import annotations

import json
import threading
from typing import Any

from agentcritic.envs.base import TextEnv
from agentcritic.types import Trajectory


class ActionMemo:
    """Actions by state key, shared by the agents of one process (threads included)."""

    def __init__(self) -> None:
        self.actions: dict[tuple, str] = {}
        self.hits = self.misses = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> str | None:
        with self._lock:
            action = self.actions.get(key)
            if action is None:
                self.misses += 1
            else:
                self.hits += 1
            return action

    def put(self, key: tuple, action: str) -> None:
        with self._lock:
            self.actions[key] = action

    def __len__(self) -> int:
        return len(self.actions)


class MemoAgent:
    """``agent`` (deterministic: its action depends on the task, the seed and the steps so far only),
    with each action computed once per state of ``memo``."""

    def __init__(self, agent: Any, memo: ActionMemo) -> None:
        self.agent, self.memo = agent, memo
        self.name = getattr(agent, "name", type(agent).__name__)
        self._episode: tuple[str, str, int] = ("", "", 0)

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        # the env's name and make() kwargs (its knobs), so two configurations of one env never share actions
        made = getattr(env, "made_from", None) or (env.name, {})
        self._episode = (json.dumps(made, sort_keys=True, default=str), str(task_id), int(seed))
        self.agent.reset(env, task_id, seed)

    def act(self, history: Trajectory, info: dict[str, Any]) -> str:
        key = (*self._episode, tuple((s.action, s.actor) for s in history.steps))
        action = self.memo.get(key)
        if action is None:
            action = self.agent.act(history, info)
            if action is not None:
                self.memo.put(key, action)
        return action

    def stats(self) -> dict[str, Any]:
        stats = getattr(self.agent, "stats", None)
        return stats() if callable(stats) else {}

    def __getattr__(self, name: str) -> Any:  # everything else is the wrapped agent's
        return getattr(self.agent, name)
