"""MCTS (ARMAP-M): UCT over env states, guided by the agent, judged by the target.

The tree alternates decision nodes (env states, keyed by the action prefix that reaches them) and
chance nodes (an action taken from a state). One rollout of the search:

1. **Select** from the root down through expanded nodes by
   ``Q + c * sqrt(ln N_parent) / (1 + n_child)`` (``prior=True``: ``Q + c * P * sqrt(N_parent) /
   (1 + n_child)``, P = the agent's probability of the action renormalised over the drawn ones).
   ``Q`` is the max of the child's returns (``q="mean"``: their mean); an unvisited child has Q 0.
2. **Expand** the leaf: up to ``expand_k`` distinct actions from ``agent.distribution`` at the
   state — the most likely one first (so the first rollout through a state is the greedy episode
   from it, and the search with a perfect target never does worse than Greedy), the others drawn
   by weighted sampling without replacement, seeded by the solve's seed and the state (so the tree
   does not depend on the order states are visited). An agent without a distribution
   (expert, random) expands the env's admissible actions uniformly. Step into one new child.
3. **Simulate** greedily to the end of the episode or to ``horizon`` actions from the task start:
   the most likely action of the agent's distribution at each state (agents without one: their
   own ``act``). This is the episode loop of :func:`~agentcritic.agents.rollout.play_episode`,
   continued from the leaf.
4. **Score** the finished (or horizon-cut) trajectory with the target — the only place the
   target is called; scores are cached per trajectory.
5. **Back up** ``G <- r + gamma * G`` along the path: the target score is the reward of the last
   step, so a chance node at depth d gets ``gamma ** (L - 1 - d) * score`` for a trajectory of L
   actions.

After ``rollouts`` rollouts the rolled-out trajectory with the highest target score is returned
(the earliest on ties); all rolled-out trajectories are the candidates.

Envs are deterministic given the action prefix, so a subtree whose every leaf has been scored
(a finished or horizon-cut state, or an expanded state whose drawn children are all exhausted)
has nothing left to teach: selection skips exhausted children, and the search stops early once the
root is exhausted. Without this, UCT with a confident but wrong prior spends most of a small budget
re-selecting trajectories it has already scored.

States are rebuilt with ``env.restore(actions)`` when the env is elsewhere (counted as env steps).
Agent distributions are cached per state: a state met again (in a later simulation or when a
simulated state is expanded) costs no LLM call. ``cache=False`` turns the per-state caches
(distributions and target scores) off, for the caching benchmark.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from agentcritic.agents.base import derive_seed
from agentcritic.agents.rollout import HIDDEN_INFO, EpisodeHooks, play_episode
from agentcritic.config import StageConfig
from agentcritic.llm.base import is_infrastructure_failure
from agentcritic.planning.accounting import agent_settings
from agentcritic.planning.base import BasePlanner, PlanResult
from agentcritic.types import Step, Trajectory

Prefix = tuple[str, ...]


class MCTSConfig(StageConfig):
    """Parameters of :class:`MCTS` (armap.md §4)."""

    rollouts: int = Field(10, ge=1, description="rollouts (select, expand, simulate, score, back up) per task")
    c: float = Field(6.36, ge=0.0, description="exploration constant of UCT")
    gamma: float = Field(0.9, gt=0.0, le=1.0, description="discount of the backup G <- r + gamma*G")
    expand_k: int = Field(10, ge=1, description="distinct actions drawn from the agent when a state is expanded")
    horizon: int = Field(10, ge=1, description="actions at most in a rolled-out trajectory (from the task start)")
    q: Literal["max", "mean"] = Field("max", description="Q of a chance node: max or mean of its returns")
    prior: bool = Field(False, description="p_uct: weight exploration by the agent's prior of the action")
    temperature: float = Field(1.0, ge=0.0, description="agent temperature of the distribution actions are drawn from")
    cache: bool = Field(True, description="cache agent distributions and target scores per state")


@dataclass
class ChanceNode:
    """An action taken from a state; ``returns`` summarises the discounted returns seen through it."""

    action: str
    prior: float
    visits: int = 0
    total: float = 0.0
    best: float = -math.inf
    child: DecisionNode | None = None

    def q(self, mode: str) -> float:
        if self.visits == 0:
            return 0.0
        return self.best if mode == "max" else self.total / self.visits


@dataclass
class DecisionNode:
    """An env state: the prefix that reaches it, the step that led here, the env's info there."""

    prefix: Prefix
    step: Step | None
    info: dict[str, Any]
    done: bool
    visits: int = 0
    children: list[ChanceNode] | None = None  # None until expanded
    error: str | None = None
    exhausted: bool = False  # every leaf below has been scored (see the module docstring)


@dataclass
class _State:
    """Where the env stands after a prefix (tree node or simulated state)."""

    prefix: Prefix
    steps: list[Step]
    info: dict[str, Any]
    done: bool


@dataclass
class SearchStats:
    agent_calls: int = 0  # agent.distribution / agent.act calls the search made
    calls_per_state: Counter = field(default_factory=Counter)
    target_hits: int = 0  # trajectories whose score came from the cache
    repeats: int = 0  # rollouts that ended in an already scored trajectory
    rollouts: int = 0  # rollouts run (fewer than asked when the tree was exhausted)


class MCTS(BasePlanner):
    """UCT with decision and chance nodes over ``env.restore``; see the module docstring."""

    name = "ARMAP-M"
    method = "mcts"
    config_class = MCTSConfig
    target_use = "to score its rollouts"
    config: MCTSConfig

    def _plan(self, env: Any, task_id: str, seed: int) -> PlanResult:
        with agent_settings(self.agent, temperature=self.config.temperature):
            search = _Search(env, self.agent, self.target, self.config, str(task_id), seed)
            best, score = search.run()
        meta = {
            "method": self.method,
            "rollouts": search.stats.rollouts,
            "tree_exhausted": search.root.exhausted,
            "cache": self.config.cache,
            "agent_calls": search.stats.agent_calls,
            "states_queried": len(search.stats.calls_per_state),
            "tree_nodes": len(search.nodes),
            "target_cache_hits": search.stats.target_hits,
            "repeated_rollouts": search.stats.repeats,
            "target_scores": [search.scored[t] for t in search.order],
        }
        candidates = [search.rolled[t] for t in search.order]
        return PlanResult(best, score, candidates, meta=meta)


class _Search:
    """The state of one ``solve``: tree, caches, and the env's current position."""

    def __init__(self, env: Any, agent: Any, target: Any, config: MCTSConfig, task_id: str, seed: int) -> None:
        self.env, self.agent, self.target, self.config = env, agent, target, config
        self.task_id, self.seed = task_id, seed
        self.stats = SearchStats()
        self.nodes: dict[Prefix, DecisionNode] = {}
        self.dists: dict[Prefix, list[tuple[str, float]]] = {}
        self.scored: dict[Prefix, float] = {}
        self.rolled: dict[Prefix, Trajectory] = {}
        self.order: list[Prefix] = []
        self.has_distribution = callable(getattr(agent, "distribution", None))
        obs, info = env.reset(task_id=task_id, seed=seed)
        self.instruction = info["instruction"]
        self.first_observation = obs
        self.traj_meta = dict(env.trajectory_meta())
        agent.reset(env, task_id, seed)
        self.at: Prefix | None = None  # the agent's reset may have used the env
        self.root = DecisionNode((), None, info, done=False)
        self.nodes[()] = self.root

    # ------------------------------------------------------------------ env position
    def goto(self, prefix: Prefix) -> None:
        if self.at != prefix:
            self.env.restore(list(prefix), task_id=self.task_id, seed=self.seed)
            self.at = prefix

    def step_from(self, prefix: Prefix, action: str) -> tuple[Step, dict[str, Any], bool]:
        self.goto(prefix)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.at = prefix + (action,)
        step_info = {k: v for k, v in info.items() if k not in HIDDEN_INFO}
        return Step(action=action, observation=obs, reward=reward, info=step_info), info, terminated or truncated

    def history(self, steps: list[Step]) -> Trajectory:
        return Trajectory(env=self.env.name, task_id=self.task_id, instruction=self.instruction,
                          steps=list(steps), meta=dict(self.traj_meta))

    # ------------------------------------------------------------------ agent
    def distribution(self, state: _State) -> list[tuple[str, float]]:
        if self.config.cache and state.prefix in self.dists:
            return self.dists[state.prefix]
        if self.has_distribution:
            self.stats.agent_calls += 1
            self.stats.calls_per_state[state.prefix] += 1
            dist = list(self.agent.distribution(self.history(state.steps), state.info))
        else:
            actions = list(dict.fromkeys(state.info.get("admissible_actions") or []))
            dist = [(a, 1.0 / len(actions)) for a in actions]
        self.dists[state.prefix] = dist
        return dist

    def greedy_action(self, state: _State) -> str | None:
        if self.has_distribution:
            dist = self.distribution(state)
            return dist[0][0] if dist else None
        self.goto(state.prefix)  # the expert reads the env's current state
        self.stats.agent_calls += 1
        self.stats.calls_per_state[state.prefix] += 1
        return self.agent.act(self.history(state.steps), state.info)

    # ------------------------------------------------------------------ tree
    def steps_to(self, node: DecisionNode) -> list[Step]:
        steps = []
        for k in range(1, len(node.prefix) + 1):
            step = self.nodes[node.prefix[:k]].step
            assert step is not None
            steps.append(step)
        return steps

    def state_of(self, node: DecisionNode) -> _State:
        return _State(node.prefix, self.steps_to(node), node.info, node.done)

    def terminal(self, node: DecisionNode) -> bool:
        return node.done or node.error is not None or len(node.prefix) >= self.config.horizon

    def expand(self, node: DecisionNode) -> None:
        try:
            dist = self.distribution(self.state_of(node))
        except Exception as exc:  # noqa: BLE001 - a dead end of the search, recorded like rollout() does
            if is_infrastructure_failure(exc):  # a dead LLM server is no dead end: the episode is to be redone
                raise
            node.error = f"{type(exc).__name__}: {exc}"
            node.children = []
            return
        rng = random.Random(derive_seed(self.seed, "expand", *node.prefix))
        keyed = []
        for action, p in dist:
            u = rng.random()
            # Efraimidis–Spirakis keys: u^(1/p) draws without replacement proportionally to p;
            # zero-probability actions come after every positive one, in random order.
            keyed.append((u ** (1.0 / p) if p > 0 else u - 1.0, action, p))
        # The agent's most likely action always comes first, so the first rollout through a state
        # is the greedy episode from it: with a perfect target the search never does worse than Greedy.
        top = max(range(len(keyed)), key=lambda i: keyed[i][2]) if keyed else 0
        rest = sorted(keyed[:top] + keyed[top + 1:], key=lambda k: -k[0])
        chosen = (keyed[top:top + 1] + rest)[: self.config.expand_k]
        mass = sum(p for _, _, p in chosen)
        node.children = [
            ChanceNode(action, (p / mass) if mass > 0 else 1.0 / len(chosen)) for _, action, p in chosen
        ]

    def select(self, node: DecisionNode) -> ChanceNode:
        assert node.children
        n_parent = max(node.visits, 1)
        c, q_mode = self.config.c, self.config.q

        def uct(ch: ChanceNode) -> float:
            if self.config.prior:
                return ch.q(q_mode) + c * ch.prior * math.sqrt(n_parent) / (1 + ch.visits)
            return ch.q(q_mode) + c * math.sqrt(math.log(n_parent)) / (1 + ch.visits)

        open_children = [ch for ch in node.children if ch.child is None or not ch.child.exhausted] or node.children
        return max(open_children, key=uct)  # max keeps the first of equals: the earliest drawn

    def child(self, node: DecisionNode, chance: ChanceNode) -> DecisionNode:
        if chance.child is None:
            step, info, done = self.step_from(node.prefix, chance.action)
            chance.child = DecisionNode(node.prefix + (chance.action,), step, info, done)
            self.nodes[chance.child.prefix] = chance.child
        return chance.child

    # ------------------------------------------------------------------ one rollout
    def simulate(self, node: DecisionNode) -> tuple[Prefix, list[Step], str | None]:
        """The episode loop continued from ``node`` with the greedy choice as the actor, to the end
        of the episode or the horizon: (prefix, steps, error)."""
        steps = self.steps_to(node)
        if node.error is not None or node.done or len(node.prefix) >= self.config.horizon:
            return node.prefix, steps, node.error

        def act(history: Trajectory, info: dict[str, Any]) -> str | None:
            state = _State(tuple(history.actions), history.steps, info, False)
            action = self.greedy_action(state)
            if action is not None:
                self.goto(state.prefix)  # expansions and earlier rollouts moved the env
            return action

        def moved(history: Trajectory, info: dict[str, Any], last: bool) -> None:
            self.at = tuple(history.actions)

        episode = play_episode(self.env, None, self.task_id, max_steps=self.config.horizon,
                               start=(self.history(steps), node.info), hooks=EpisodeHooks(act=act, on_step=moved))
        return tuple(episode.trajectory.actions), episode.trajectory.steps, episode.error

    def trajectory(self, prefix: Prefix, steps: list[Step], error: str | None) -> Trajectory:
        self.goto(prefix)
        inner_done = self.env.terminated or self.env.truncated
        meta = {**self.traj_meta, "policy": getattr(self.agent, "name", type(self.agent).__name__),
                "planner": "mcts", "invalid_actions": self.env.invalid_actions,
                "truncated": bool(self.env.truncated),
                "horizon_cut": not inner_done and len(prefix) >= self.config.horizon}
        if error:
            meta["error"] = error
        return Trajectory(env=self.env.name, task_id=self.task_id, instruction=self.instruction, steps=list(steps),
                          success=bool(self.env.success) and not error, score=float(self.env.score), meta=meta)

    def score(self, prefix: Prefix, traj: Trajectory) -> float:
        if self.config.cache and prefix in self.scored:
            self.stats.target_hits += 1
            return self.scored[prefix]
        value = float(self.target.score([traj])[0])
        self.scored[prefix] = value
        return value

    def rollout_once(self) -> None:
        node, path = self.root, []
        while not self.terminal(node):
            if node.children is None:
                self.expand(node)
                if not node.children:
                    break
                chance = self.select(node)
                path.append((node, chance))
                node = self.child(node, chance)
                break
            if not node.children:
                break
            chance = self.select(node)
            path.append((node, chance))
            node = self.child(node, chance)
        prefix, steps, error = self.simulate(node)
        if prefix in self.rolled:
            self.stats.repeats += 1
            traj = self.rolled[prefix]
        else:
            traj = self.trajectory(prefix, steps, error)
            self.rolled[prefix] = traj
            self.order.append(prefix)
        value = self.score(prefix, traj)
        length = len(prefix)
        for depth, (parent, chance) in enumerate(path):
            ret = self.config.gamma ** (length - 1 - depth) * value
            parent.visits += 1
            chance.visits += 1
            chance.total += ret
            chance.best = max(chance.best, ret)
        node.visits += 1
        if self.terminal(node) or node.children == []:
            node.exhausted = True
        for parent, _ in reversed(path):
            if parent.children and all(ch.child is not None and ch.child.exhausted for ch in parent.children):
                parent.exhausted = True
            else:
                break

    def run(self) -> tuple[Trajectory, float]:
        for _ in range(self.config.rollouts):
            if self.root.exhausted:
                break
            self.rollout_once()
            self.stats.rollouts += 1
        best = max(range(len(self.order)), key=lambda i: (self.scored[self.order[i]], -i))
        prefix = self.order[best]
        return self.rolled[prefix], self.scored[prefix]
