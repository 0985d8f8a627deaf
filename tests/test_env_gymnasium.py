"""Gymnasium both ways: a text gymnasium env as a TextEnv (``from_gymnasium``), and every TextEnv
as a gymnasium env (``as_gymnasium``) that gymnasium's own ``check_env`` accepts."""

from __future__ import annotations

import pickle
import string
import warnings

import gymnasium
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from agentcritic import envs
from agentcritic.agents import RandomAgent, rollout
from agentcritic.envs import EnvError, from_gymnasium
from agentcritic.envs.check import check_env
from agentcritic.envs.gym_env import GYMNASIUM_ID, AnyText, GymnasiumEnvError, TextEnvAsGymnasium

WALK_ID = "agentcritic-test/Walk-v0"
CELLS = 6
TIME_LIMIT = 12


class WalkEnv(gymnasium.Env):
    """Walk a corridor to the cell the instruction names: text observations, text actions.

    The seed draws the start and the target (``options={"target": n}`` fixes the target). Info
    carries the instruction, the admissible moves and the move toward the target.
    """

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Text(200, min_length=0, charset=string.printable)
        self.action_space = spaces.Text(20, charset=string.ascii_lowercase + " ")
        self.pos = self.target = 0

    def _info(self) -> dict:
        moves = (["go left"] if self.pos > 0 else []) + (["go right"] if self.pos < CELLS - 1 else []) + ["wait"]
        expert = "go left" if self.target < self.pos else "go right"
        return {"instruction": f"Go to cell {self.target}.", "admissible_actions": moves, "expert_action": expert}

    def _obs(self) -> str:
        return f"You are in cell {self.pos} of a corridor of cells 0 to {CELLS - 1}."

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        self.target = int(options["target"]) if "target" in options else int(self.np_random.integers(CELLS))
        self.pos = int((self.target + 1 + self.np_random.integers(CELLS - 1)) % CELLS)  # never the target
        return self._obs(), self._info()

    def step(self, action):
        if action == "go left" and self.pos > 0:
            self.pos -= 1
        elif action == "go right" and self.pos < CELLS - 1:
            self.pos += 1
        elif action != "wait":
            return f"Nothing happens: {action!r} is not a move.", 0.0, False, False, self._info()
        done = self.pos == self.target
        obs = "You reached the cell." if done else self._obs()
        return obs, float(done), done, False, self._info()


class NoInstructionEnv(WalkEnv):
    def _info(self) -> dict:
        return {"admissible_actions": ["wait"]}


if WALK_ID not in gymnasium.registry:
    gymnasium.register(WALK_ID, entry_point=WalkEnv, max_episode_steps=TIME_LIMIT)


def walk(**kwargs) -> envs.GymnasiumTextEnv:
    return from_gymnasium(WALK_ID, **{"tasks": 20, **kwargs})


# ----------------------------------------------------------------- from_gymnasium


def test_wrapped_gymnasium_env_passes_the_conformance_checks() -> None:
    env = walk()
    report = check_env(env, expert_tasks=10)
    assert report.ok, str(report)
    assert not [c for c in report.checks if c.passed is None], f"checks skipped:\n{report}"
    env.close()


def test_task_ids_are_reset_seeds_split_three_ways() -> None:
    env = walk(tasks=5)
    assert env.task_ids("train") == ["0", "1", "2", "3", "4"]
    assert env.task_ids("dev") == ["5", "6", "7", "8", "9"]
    assert env.task_ids("test") == ["10", "11", "12", "13", "14"]
    assert env.max_steps == TIME_LIMIT, "max_steps comes from the gymnasium spec's max_episode_steps"
    firsts = set()
    for task in env.task_ids("train"):
        obs, info = env.reset(task_id=task, seed=99)
        gym_obs, gym_info = gymnasium.make(WALK_ID).reset(seed=int(task))
        assert (obs, info["instruction"]) == (gym_obs, gym_info["instruction"])
        firsts.add((obs, info["instruction"]))
    assert len(firsts) > 1, "different seeds make different tasks"


def test_instruction_admissible_actions_and_expert_come_from_info() -> None:
    env = walk()
    obs, info = env.reset(task_id="12", seed=0)
    target = int(info["instruction"].removeprefix("Go to cell ").rstrip("."))
    pos = int(obs.split()[4])
    assert info["admissible_actions"] == env.env.unwrapped._info()["admissible_actions"]
    rewards = []
    while not (env.terminated or env.truncated):
        action = env.expert_action()
        assert action in env.admissible_actions()
        _, reward, _, _, info = env.step(action)
        rewards.append(reward)
    assert env.terminated and info["success"] and info["score"] == 1.0
    assert len(env.actions) == abs(target - pos)
    assert sum(rewards) == 1.0 and info["admissible_actions"] == []
    assert env.expert_action() is None


def test_action_outside_the_list_is_invalid_but_reaches_the_env() -> None:
    env = walk()
    env.reset(task_id="3", seed=0)
    obs, reward, terminated, truncated, info = env.step("dance")
    assert obs == "Nothing happens: 'dance' is not a move."
    assert info["invalid"] and reward == 0.0 and not (terminated or truncated)
    assert env.invalid_actions == 1


def test_the_envs_time_limit_is_a_truncation_not_an_outcome() -> None:
    env = walk(max_steps=50)  # the TimeLimit (12) ends the episode first
    env.reset(task_id="0", seed=0)
    for i in range(TIME_LIMIT):
        _, _, terminated, truncated, info = env.step("wait")
    assert i == TIME_LIMIT - 1 and truncated and not terminated
    assert env.truncated and not env.terminated and not info["success"]
    obs, reward, _, truncated, _ = env.step("wait")
    assert truncated and reward == 0.0 and "ended" in obs


def test_a_reset_option_can_name_the_task() -> None:
    env = walk(tasks={"train": [0, 1], "dev": [2], "test": [3, 4, 5]}, task_option="target")
    assert env.splits == ("train", "dev", "test") and env.task_ids("test") == ["3", "4", "5"]
    _, info = env.reset(task_id="4", seed=1)
    assert info["instruction"] == "Go to cell 4."
    first = env.last_observation
    assert env.reset(task_id="4", seed=1)[0] == first, "the episode seed is the reset seed"
    with pytest.raises(EnvError, match="unknown task id"):
        env.reset(task_id="9")


def test_a_random_rollout_records_the_episode() -> None:
    env = walk()
    agent = RandomAgent(seed=0)
    trajectories = [rollout(env, agent, task, seed=0) for task in env.task_ids("test")]
    for traj in trajectories:
        assert traj.env == WALK_ID and traj.instruction.startswith("Go to cell ")
        assert 1 <= len(traj.steps) <= TIME_LIMIT
        assert all(s.action in ("go left", "go right", "wait") for s in traj.steps)
        assert sum(s.reward for s in traj.steps) == traj.score
        assert traj.success == (traj.steps[-1].observation == "You reached the cell.")
        assert traj.success or len(traj.steps) == TIME_LIMIT
    successes = sum(t.success for t in trajectories)
    assert 0 < successes < len(trajectories), "a random walk reaches some targets, not all"
    again = [rollout(env, RandomAgent(seed=0), task, seed=0) for task in env.task_ids("test")]
    assert [t.actions for t in again] == [t.actions for t in trajectories]


def walk_instruction(observation: str, info: dict) -> str:
    """A module-level function, so the env pickles (a lambda would not)."""
    return "Walk: " + info["instruction"]


def test_an_env_instance_wraps_and_pickles() -> None:
    env = from_gymnasium(WalkEnv(), instruction=walk_instruction, tasks=3)
    assert env.name == "WalkEnv" and env.max_steps == 30  # no spec: the TextEnv default
    obs, info = env.reset(task_id="7", seed=0)
    assert info["instruction"].startswith("Walk: Go to cell")
    env.step("wait")
    clone = pickle.loads(pickle.dumps(env))
    assert clone.actions == ["wait"] and clone.last_observation == env.last_observation


def test_user_errors_say_what_to_do() -> None:
    with pytest.raises(EnvError, match="gymnasium cannot make 'NoSuchEnv-v0'.*gymnasium.register"):
        from_gymnasium("NoSuchEnv-v0")
    with pytest.raises(EnvError, match="takes a gymnasium.Env or a gymnasium env id"):
        from_gymnasium(object())
    with pytest.raises(EnvError, match="not text.*ObservationWrapper"):
        from_gymnasium("CartPole-v1", instruction="Balance.", tasks=2).reset(task_id="0")
    with pytest.raises(EnvError, match="no instruction.*instruction="):
        from_gymnasium(NoInstructionEnv(), tasks=2).reset(task_id="0")
    with pytest.raises(EnvError, match="in both 'train' and 'test'"):
        walk(tasks={"train": [1, 2], "test": [2]})
    with pytest.raises(EnvError, match="not a reset seed"):
        walk(tasks={"train": ["easy"]})
    with pytest.raises(EnvError, match="unknown splits"):
        walk(tasks={"validation": [1]})


def test_round_trip_through_gymnasium_is_the_same_env() -> None:
    game = envs.make("game24")
    back = from_gymnasium(game.as_gymnasium(), task_option="task_id",
                          tasks={s: game.task_ids(s, limit=3) for s in ("train", "dev", "test")})
    direct = envs.make("game24")
    task = direct.task_ids("test")[1]
    obs, info = back.reset(task_id=task, seed=0)
    assert (obs, info["instruction"]) == direct.reset(task_id=task, seed=0)[0:1] + (direct.instruction,)
    while not back.terminated:
        action = direct.expert_action()
        assert back.admissible_actions() == direct.admissible_actions()
        assert back.step(action)[0] == direct.step(action)[0]
    assert back.success and back.score == 1.0


# ----------------------------------------------------------------- as_gymnasium

JAVA_ENVS = {"scienceworld", "textworld"}
BUILT_IN = [pytest.param(n, marks=[pytest.mark.java, pytest.mark.slow]) if n in JAVA_ENVS else n
            for n in ("game24", "shop", "household", "scienceworld", "textworld")]


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_env_passes_gymnasiums_checker(name: str) -> None:
    made = gymnasium.make(GYMNASIUM_ID, env=name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any complaint of gymnasium's checker fails the test
            # through gymnasium.make the env has a spec, so the render and close checks run too
            gymnasium_check_env(made.unwrapped)
    finally:
        made.close()
    text_env = envs.make(name)
    env = text_env.as_gymnasium(split="test")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gymnasium_check_env(env)
        # made directly it has no spec, the one thing gymnasium's checker then says
        assert [str(w.message) for w in caught if "spec" not in str(w.message)] == []
        _random_steps(env, text_env)
    finally:
        env.close()


def _random_steps(env: TextEnvAsGymnasium, text_env: envs.TextEnv) -> None:
    assert isinstance(env.observation_space, spaces.Text) and isinstance(env.action_space, spaces.Text)
    obs, info = env.reset(seed=3)
    assert obs == text_env.last_observation and info["task_id"] in text_env.task_ids("test")
    assert env.reset(seed=3) == (obs, info), "the same seed starts the same episode"
    first = (obs, info)
    rewards = []
    for _ in range(4):
        actions = info["admissible_actions"]
        assert actions, f"{text_env.name}: no admissible actions mid-episode"
        action = actions[int(env.np_random.integers(len(actions)))]
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs in env.observation_space and isinstance(reward, float) and isinstance(info, dict)
        assert text_env.actions[-1] == action and info["steps"] == len(text_env.actions)
        rewards.append(reward)
        if terminated or truncated:
            break
    assert sum(rewards) == pytest.approx(info["score"])
    task = text_env.task_ids("dev")[0]
    obs, info = env.reset(seed=3, options={"task_id": task})
    assert info["task_id"] == task and text_env.task_id == task and first[1]["task_id"] != task
    assert env.reset(options={"split": "train"})[1]["task_id"] in text_env.task_ids("train")


def test_gymnasium_view_of_game24_answers_like_the_text_env() -> None:
    game = envs.make("game24")
    env = game.as_gymnasium(render_mode="ansi")
    task = game.task_ids("test")[0]
    obs, info = env.reset(seed=0, options={"task_id": task})
    assert info["instruction"] and info["admissible_actions"] == game.admissible_actions()
    assert env.render() == obs
    info["admissible_actions"].clear()  # the caller's copy: the env's own list is untouched
    assert game.admissible_actions()
    action = game.expert_action()
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs == game.last_observation and env.render() == obs and game.actions == [action]
    obs, reward, terminated, truncated, info = env.step("xyzzy")
    assert info["invalid"] and reward == 0.0 and not terminated


def test_rl_vector_env_drives_text_envs() -> None:
    """gymnasium's own vector env (what RL libraries batch through) steps text envs side by side."""
    vec = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(GYMNASIUM_ID, env="game24")] * 2)
    obs, info = vec.reset(seed=0)
    assert len(obs) == 2 and all(isinstance(o, str) for o in obs) and obs[0] != obs[1]
    actions = tuple(a[0] for a in info["admissible_actions"])
    obs, reward, terminated, truncated, info = vec.step(actions)
    assert all(isinstance(o, str) and o.startswith("Numbers left:") for o in obs)
    assert list(reward) == [0.0, 0.0] and not terminated.any()
    vec.close()


def test_gymnasium_side_errors_name_the_choices() -> None:
    env = envs.make("game24").as_gymnasium()
    with pytest.raises(GymnasiumEnvError, match=r"reset options \['level'\] are unknown.*task_id"):
        env.reset(options={"level": 3})
    with pytest.raises(EnvError, match="unknown split"):
        envs.make("game24").as_gymnasium(split="validation")
    with pytest.raises(GymnasiumEnvError, match="render_mode 'human'"):
        envs.make("game24").as_gymnasium(render_mode="human")
    assert isinstance(env.observation_space, AnyText) and "12 × 2 = 24" in env.observation_space
    assert "" in env.observation_space and "" not in env.action_space


def test_an_env_name_reaches_gymnasium_make_without_importing_agentcritic_first() -> None:
    env = gymnasium.make("agentcritic.envs.gym_env:agentcritic/TextEnv-v0", env="game24", split="test",
                         render_mode="ansi", max_steps=3)
    obs, info = env.reset(seed=0)
    text_env = env.unwrapped.text_env
    assert text_env.max_steps == 3 and info["task_id"] in text_env.task_ids("test")
    assert env.render() == obs
    with pytest.raises(GymnasiumEnvError, match="wraps an agentcritic TextEnv.*as_gymnasium"):
        TextEnvAsGymnasium(gymnasium.make("CartPole-v1"))
    env.close()
