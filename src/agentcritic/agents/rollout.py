"""The episode loop: an agent (or a list of actions) in an env, recorded as a :class:`Trajectory`.

Every episode in agentcritic is played by :func:`play_episode`; what differs is told by hooks
(:class:`EpisodeHooks`), never by another copy of the loop:

- the agent rollout, :func:`rollout` (exploration for synthesis is a rollout of an
  :class:`~agentcritic.agents.explorer.ExplorerAgent`; Greedy, Sampling and Reflexion are rollouts);
- the replay of edited negatives (:func:`agentcritic.synth.replay.execute`): ``act`` hands out a
  fixed list of actions;
- helped episodes (:func:`agentcritic.helper.episode.run_helped_episode`): ``override`` lets an
  intervention act instead of the agent, ``on_step`` logs a transition per step;
- MCTS simulation (:mod:`agentcritic.planning.mcts`): ``start`` continues from a tree node and
  ``act`` is the search's greedy choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentcritic.agents.base import Agent
from agentcritic.envs.base import TextEnv
from agentcritic.llm.base import is_infrastructure_failure
from agentcritic.types import Step, Trajectory


#: env info keys a recorded step leaves out (the next decision's inputs, not the step's outcome)
HIDDEN_INFO = ("admissible_actions", "instruction", "task_id")

#: ``act(history, info) -> action``: None ends the episode
ActFn = Callable[[Trajectory, dict[str, Any]], "str | None"]
#: ``override(history, info) -> (action, actor)`` to act instead of the agent, or None
OverrideFn = Callable[[Trajectory, dict[str, Any]], "tuple[str, str] | None"]
#: ``on_step(history, info, last)``: after each recorded step; ``last`` when no step follows
StepFn = Callable[[Trajectory, dict[str, Any], bool], None]


@dataclass
class EpisodeHooks:
    """What a caller changes in :func:`play_episode`; every hook is optional.

    An exception raised by ``act`` or ``override`` ends the episode like one of the agent's.
    """

    act: ActFn | None = None  # instead of ``agent.act`` (a replayed action list, a search's choice)
    override: OverrideFn | None = None  # asked first at every decision (a helper's intervention)
    on_step: StepFn | None = None


@dataclass
class Episode:
    """What :func:`play_episode` returns: the trajectory, the env's last info, why it stopped."""

    trajectory: Trajectory
    info: dict[str, Any]
    limit: int  # steps at most (the env's, or ``max_steps`` when lower)
    exception: Exception | None = None  # raised by the agent or a hook; the episode ended there

    @property
    def error(self) -> str | None:
        return None if self.exception is None else f"{type(self.exception).__name__}: {self.exception}"


def play_episode(
    env: TextEnv,
    agent: Agent | None,
    task_id: str,
    seed: int | None = 0,
    *,
    max_steps: int | None = None,
    meta: dict[str, Any] | None = None,
    instruction: str | None = None,
    hooks: EpisodeHooks | None = None,
    start: tuple[Trajectory, dict[str, Any]] | None = None,
) -> Episode:
    """The one episode loop: reset, then act and step until the env ends the episode, ``max_steps``
    is reached or the actor has no action (``None``).

    ``agent`` acts unless ``hooks`` say otherwise (``None``: ``hooks.act`` is the actor). The
    trajectory's meta starts as the env's trajectory meta, the agent's ``policy`` name and
    ``meta``; ``instruction`` replaces the env's (a replay judged against another intent).
    ``start=(history, info)`` continues an episode the caller has put the env in, without a reset.
    An exception of the actor does not escape: the trajectory is failed, with ``meta["error"]`` and
    ``meta["error_kind"]`` (``"infrastructure"`` when the machinery failed, see
    :func:`~agentcritic.llm.base.is_infrastructure_failure`). Env errors escape: they are the caller's.
    """
    hooks = hooks or EpisodeHooks()
    if agent is None and hooks.act is None:
        raise ValueError("play_episode needs an agent or hooks.act to choose the actions")
    if start is None:
        obs, info = env.reset(task_id=task_id, seed=seed)
        head = {"policy": getattr(agent, "name", type(agent).__name__)} if agent is not None else {}
        traj = Trajectory(env=env.name, task_id=str(task_id),
                          instruction=info["instruction"] if instruction is None else instruction,
                          meta={**env.trajectory_meta(), **head, **(meta or {})})
    else:
        traj, info = start
    limit = min(env.max_steps, max_steps) if max_steps else env.max_steps
    if agent is not None and start is None:
        agent.reset(env, task_id, seed)
    act = hooks.act or agent.act  # type: ignore[union-attr]  # checked above
    episode = Episode(traj, info, limit)
    done = False
    while not done and len(traj.steps) < limit:
        try:
            decision = hooks.override(traj, info) if hooks.override is not None else None
            action, actor = decision if decision is not None else (act(traj, info), "agent")
        except Exception as exc:  # noqa: BLE001 - recorded, not swallowed: see the docstring
            episode.exception = exc
            break
        if action is None:
            break
        obs, reward, terminated, truncated, info = env.step(action)
        step_info = {k: v for k, v in info.items() if k not in HIDDEN_INFO}
        traj.steps.append(Step(action=action, observation=obs, reward=reward, info=step_info, actor=actor))
        done = terminated or truncated
        episode.info = info
        if hooks.on_step is not None:
            hooks.on_step(traj, info, done or len(traj.steps) >= limit)
    if episode.exception is not None:
        traj.meta["error"] = episode.error
        traj.meta["error_kind"] = "infrastructure" if is_infrastructure_failure(episode.exception) else "task"
    traj.success = bool(env.success) and episode.exception is None
    traj.score = float(env.score)
    traj.meta["invalid_actions"] = env.invalid_actions
    return episode


def rollout(
    env: TextEnv,
    agent: Agent,
    task_id: str,
    seed: int = 0,
    max_steps: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Trajectory:
    """Run ``agent`` on ``task_id`` until the env ends the episode or ``max_steps`` is reached.

    An exception raised by the agent (an unreachable server, an expert with no move) does not
    escape: the episode is recorded as failed with the error in ``meta["error"]`` (and
    ``meta["error_kind"]``), so a long run goes on. Errors of the env itself (unknown task id) do
    escape: they are the caller's.
    """
    episode = play_episode(env, agent, task_id, seed, max_steps=max_steps, meta=meta)
    traj = episode.trajectory
    if hasattr(agent, "stats"):
        traj.meta["agent"] = agent.stats()
    traj.meta["truncated"] = bool(env.truncated or (not env.terminated and len(traj.steps) >= episode.limit))
    return traj
