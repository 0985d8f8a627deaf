"""Is an env usable by agentcritic? The contract every env must keep, checked as Gymnasium's
``check_env`` checks its own: ::

    from agentcritic.envs import check_env
    report = check_env("mypkg.envs:CounterEnv")   # or an env, or its class; raises on a failure
    print(report)

Each check names what it tried; a failed one says what went wrong and how to fix it. Same-seed
determinism is checked on two separate instances (state that leaks from one episode into the next,
or an unseeded random source, shows there), and ``restore`` must reproduce the observation from
the action list alone: planners, the synthesis replay and worker processes rebuild envs that way.
``agentcritic check-env NAME`` prints the same report.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentcritic.envs.base import EnvError, TextEnv

#: an action no env should understand: it must be answered (an observation), not raised
GARBAGE = "xyzzy frobnicate the quux"
#: beyond this many steps the truncation check stops instead of walking to ``max_steps``
MAX_TRUNCATION_WALK = 5_000


@dataclass
class Check:
    """One check: its name, whether it passed (None: skipped), what failed and how to fix it."""

    name: str
    passed: bool | None
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]
        text = f"{mark}  {self.name}"
        if self.detail:
            text += f": {self.detail}"
        if self.passed is False and self.fix:
            text += f"\n      fix: {self.fix}"
        return text


@dataclass
class EnvReport:
    """What :func:`check_env` found, check by check."""

    env: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    def __str__(self) -> str:
        failed = len(self.failures)
        verdict = "conforms" if not failed else f"fails {failed} of {len(self.checks)} checks"
        return "\n".join([f"env {self.env}: {verdict}", *(c.line() for c in self.checks)])


class EnvCheckError(EnvError):
    """An env that breaks the contract; ``report`` holds every check."""

    def __init__(self, report: EnvReport) -> None:
        super().__init__(str(report))
        self.report = report


class _Failed(Exception):
    """A check's failure: what went wrong and how to fix it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _require(condition: bool, detail: str, fix: str) -> None:
    if not condition:
        raise _Failed(detail, fix)


def check_env(
    env: TextEnv | type[TextEnv] | str,
    *,
    expert_tasks: int = 5,
    seed: int = 7,
    steps: int = 6,
    raise_on_failure: bool = True,
) -> EnvReport:
    """Check ``env`` (an env, its class, or a name / class path for :func:`agentcritic.envs.make`).

    A second instance for the determinism check is built the way the first was (the name, the
    class, or the env's own constructor arguments). ``expert_tasks``: how many test tasks an env
    with an expert must solve; ``steps``: the length of the random episodes compared.
    Returns the :class:`EnvReport`; with ``raise_on_failure`` a failed check raises
    :class:`EnvCheckError` (an :class:`EnvError`) whose message is the report.
    """
    from agentcritic.envs.registry import make

    if isinstance(env, str):
        name = env
        build: Callable[[], TextEnv] = lambda: make(name)  # noqa: E731
    elif isinstance(env, type):
        cls = env
        name = f"{cls.__module__}:{cls.__qualname__}"
        build = cls
    else:
        name = getattr(env, "name", type(env).__name__)
        instance = env
        build = lambda: type(instance)(**getattr(instance, "_init_kwargs", {}))  # noqa: E731
    report = EnvReport(name)
    run = _Runner(report)
    first: TextEnv | None = env if isinstance(env, TextEnv) else None
    made: list[TextEnv] = []

    def construct() -> None:
        nonlocal first
        if first is None:
            try:
                first = build()
            except EnvError as exc:  # its message says what failed and what to do
                raise _Failed(str(exc), "") from None
            except TypeError as exc:
                raise _Failed(f"building the env raised TypeError: {exc}",
                              "give every constructor argument a default (envs are made with no arguments, "
                              "or with env_kwargs from the config)") from None
            made.append(first)
        _require(isinstance(first, TextEnv), f"it is a {type(first).__name__}, not a TextEnv",
                 "derive the env class from agentcritic.envs.TextEnv")
        _require(isinstance(getattr(first, "_init_kwargs", None), dict) and hasattr(first, "actions"),
                 "TextEnv.__init__ was not called", "call super().__init__(max_steps=max_steps, **kwargs) "
                 "first in the env's __init__")

    try:
        if not run("construct", construct, "building the env raised; fix its __init__"):
            return _finish(report, raise_on_failure)
        e: TextEnv = first  # type: ignore[assignment]
        task_ok = run("splits", lambda: _splits(e), "")
        run("unknown split and task", lambda: _unknown(e), "")
        if not task_ok:
            _skip(report, "reset", "step", "invalid action", "max_steps", "determinism", "restore",
                  "pickle", "expert", why="no task ids to run")
        elif run("reset", lambda: _reset(e), ""):
            run("step", lambda: _step(e), "")
            run("invalid action", lambda: _invalid(e), "")
            run("max_steps", lambda: _max_steps(e), "")
            run("determinism", lambda: _determinism(e, build, made, seed, steps), "")
            run("restore", lambda: _restore(e, seed, steps), "")
            run("pickle", lambda: _pickle(e, seed, steps), "")
            run("expert", lambda: _expert(e, expert_tasks), "")
        else:
            _skip(report, "step", "invalid action", "max_steps", "determinism", "restore", "pickle",
                  "expert", why="reset failed")
        run("rm_observation", lambda: _rm_observation(e), "")
        run("helper_view", lambda: _helper_view(e), "")
    finally:
        for m in made:
            try:
                m.close()
            except Exception:  # noqa: BLE001 - closing is best effort; the report is the result
                pass
    return _finish(report, raise_on_failure)


def _finish(report: EnvReport, raise_on_failure: bool) -> EnvReport:
    if raise_on_failure and not report.ok:
        raise EnvCheckError(report)
    return report


def _skip(report: EnvReport, *names: str, why: str) -> None:
    report.checks.extend(Check(n, None, why) for n in names)


class _Runner:
    """Runs one check: a :class:`_Failed` or any exception becomes a failed check."""

    def __init__(self, report: EnvReport) -> None:
        self.report = report

    def __call__(self, name: str, fn: Callable[[], str | None], fix: str) -> bool:
        try:
            detail = fn()
        except _Failed as exc:
            self.report.checks.append(Check(name, False, exc.detail, exc.fix))
            return False
        except Exception as exc:  # noqa: BLE001 - an env that raises fails the check, with what it raised
            self.report.checks.append(Check(name, False, f"raised {type(exc).__name__}: {exc}",
                                            fix or "see the message; the contract is in agentcritic/envs/base.py"))
            return False
        if detail is None or not detail.startswith("skipped"):
            self.report.checks.append(Check(name, True, detail or ""))
        else:
            self.report.checks.append(Check(name, None, detail.removeprefix("skipped: ")))
        return True


# ------------------------------------------------------------------------------- the checks
def _splits(env: TextEnv) -> str:
    seen: dict[str, str] = {}
    sizes = []
    for split in env.splits:
        ids = env.task_ids(split)
        _require(isinstance(ids, list) and bool(ids), f"split {split!r} has no tasks",
                 f"_task_ids({split!r}) must return a non-empty list of task ids")
        odd = [t for t in ids if not isinstance(t, str)]
        _require(not odd, f"split {split!r} has task ids that are not strings (e.g. {odd[:1]!r})",
                 "return task ids as str")
        _require(env.task_ids(split, limit=2) == ids[:2], f"task_ids({split!r}, limit=2) is not the split's first two",
                 "_task_ids must return the split's ids in a fixed order")
        _require(env.task_ids(split) == ids, f"task_ids({split!r}) changes between calls",
                 "_task_ids must return the split's ids in a fixed order")
        for t in ids:
            _require(t not in seen, f"task {t!r} is in both {seen.get(t)!r} and {split!r}",
                     "splits must be disjoint: a task belongs to one split")
            seen[t] = split
        sizes.append(f"{split} {len(ids)}")
    _require("test" in env.splits, f"the splits are {list(env.splits)}, without 'test'",
             "keep the splits train, dev, test (the default) or at least a 'test' split")
    return ", ".join(sizes)


def _unknown(env: TextEnv) -> None:
    for call, what in ((lambda: env.task_ids("validation-ish"), "task_ids('validation-ish')"),
                       (lambda: env.reset(task_id="no-such-task-42"), "reset(task_id='no-such-task-42')")):
        try:
            call()
        except EnvError:
            continue
        raise _Failed(f"{what} did not raise EnvError",
                      "do not override task_ids / reset / check_task_id; the base class rejects unknown ones")


def _reset(env: TextEnv) -> None:
    task = env.task_ids("test")[0]
    out = env.reset(task_id=task, seed=0)
    _require(isinstance(out, tuple) and len(out) == 2, f"reset returned {type(out).__name__}, not (observation, info)",
             "do not override reset; implement _reset(task_id, seed) -> (observation, instruction)")
    obs, info = out
    _require(isinstance(obs, str) and bool(obs.strip()), f"the first observation is {obs!r}",
             "_reset must return a non-empty observation string first")
    _require(isinstance(info, dict), f"info is a {type(info).__name__}", "do not override info(); add keys in _extra_info")
    for key in ("instruction", "admissible_actions", "score", "success", "steps", "invalid"):
        _require(key in info, f"info has no {key!r}", "do not override info(); add keys in _extra_info")
    _require(isinstance(info["instruction"], str) and bool(info["instruction"].strip()),
             f"info['instruction'] is {info['instruction']!r}",
             "_reset must return (observation, instruction) with the task's instruction as a non-empty string")
    _check_admissible(info["admissible_actions"], "at the start")
    _require(info["admissible_actions"] != [], "there are no admissible actions at the start",
             "_admissible must list the actions a chooser may pick, or return None when it cannot list them")


def _check_admissible(actions: Any, when: str) -> None:
    _require(actions is None or (isinstance(actions, list) and all(isinstance(a, str) for a in actions)),
             f"info['admissible_actions'] {when} is {actions!r:.80}",
             "_admissible must return a list of action strings, or None when the env cannot list them")


def _choices(env: TextEnv, info: dict[str, Any]) -> list[str]:
    """Actions a test episode may take: the listed ones, else the expert's, else a probe."""
    listed = info.get("admissible_actions")
    if listed:
        return sorted(listed)
    expert = env.expert_action()
    return [expert] if expert else ["look"]


def _step(env: TextEnv) -> str:
    _, info = env.reset(task_id=env.task_ids("test")[0], seed=0)
    action = _choices(env, info)[0]
    out = env.step(action)
    _require(isinstance(out, tuple) and len(out) == 5,
             f"step returned {type(out).__name__}, not (observation, reward, terminated, truncated, info)",
             "do not override step; implement _step(action) -> StepOutcome")
    obs, reward, terminated, truncated, info = out
    _require(isinstance(obs, str), f"the observation is a {type(obs).__name__}", "StepOutcome.observation must be a str")
    _require(isinstance(reward, float) and reward >= 0.0, f"the reward is {reward!r}",
             "StepOutcome.score must be the episode's score so far, a float in [0, 1]")
    _require(isinstance(terminated, bool) and isinstance(truncated, bool),
             f"terminated/truncated are {terminated!r}/{truncated!r}", "StepOutcome.done must be a bool")
    _require(isinstance(info, dict) and 0.0 <= float(info.get("score", -1)) <= 1.0,
             f"info['score'] is {info.get('score') if isinstance(info, dict) else info!r}",
             "StepOutcome.score must lie in [0, 1]")
    _check_admissible(info["admissible_actions"], f"after {action!r}")
    _require(len(env.actions) == 1 and env.actions[0] == action.strip(), f"env.actions is {env.actions!r}",
             "do not override step; the base class records each action")
    return f"{action!r} -> reward {reward:.3f}, terminated {terminated}"


def _invalid(env: TextEnv) -> None:
    env.reset(task_id=env.task_ids("test")[0], seed=0)
    try:
        obs, reward, _, _, info = env.step(GARBAGE)
    except Exception as exc:  # noqa: BLE001 - raising is exactly the failure this check looks for
        raise _Failed(f"step({GARBAGE!r}) raised {type(exc).__name__}: {exc}",
                      "answer an action the env does not understand with an observation saying so: "
                      "return StepOutcome(observation='...', score=..., done=False, valid=False)") from None
    fix = "return StepOutcome(..., valid=False) with an observation that says the action was not understood"
    _require(isinstance(obs, str) and bool(obs.strip()), f"the answer to an invalid action is {obs!r}", fix)
    _require(info.get("invalid") is True, "an invalid action was not marked invalid (info['invalid'] is "
             f"{info.get('invalid')!r})", fix)
    _require(reward == 0.0, f"an invalid action earned reward {reward}", "an invalid action must not raise the score")
    _require(env.invalid_actions == 1 and len(env.actions) == 1,
             f"invalid_actions {env.invalid_actions}, actions {len(env.actions)} after one invalid action",
             "do not override step; an invalid action counts as a step")


def _max_steps(env: TextEnv) -> str | None:
    if env.max_steps > MAX_TRUNCATION_WALK:
        return f"skipped: max_steps {env.max_steps} is over {MAX_TRUNCATION_WALK}"
    env.reset(task_id=env.task_ids("test")[0], seed=0)
    terminated = truncated = False
    for _ in range(env.max_steps):
        _, _, terminated, truncated, _ = env.step(GARBAGE)
        if terminated or truncated:
            break
    _require(not terminated, f"invalid actions ended the episode after {len(env.actions)} step(s)",
             "an invalid action must not end the episode (StepOutcome.done=False); max_steps ends it")
    _require(truncated and len(env.actions) == env.max_steps,
             f"after {len(env.actions)} of max_steps {env.max_steps} steps truncated is {truncated}",
             "do not override step; the base class truncates at max_steps")
    obs, reward, _, truncated, _ = env.step(GARBAGE)
    _require(truncated and reward == 0.0 and "ended" in obs, f"a step after the end was answered {obs!r}",
             "do not override step; the base class answers steps after the end")
    return f"truncated after {env.max_steps} steps"


def _episode(env: TextEnv, task: str, seed: int, steps: int) -> list[tuple]:
    """A random episode (actions drawn with ``seed``) as comparable tuples."""
    rng = random.Random(seed)
    obs, info = env.reset(task_id=task, seed=seed)
    trace: list[tuple] = [(obs, info["admissible_actions"])]
    for _ in range(steps):
        action = rng.choice(_choices(env, info))
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action, obs, reward, terminated, truncated, info["score"], info["admissible_actions"]))
        if terminated or truncated:
            break
    return trace


def _first_difference(a: list[tuple], b: list[tuple]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"step {i}: {x!r:.120} vs {y!r:.120}"
    return f"lengths {len(a)} vs {len(b)}"


def _determinism(env: TextEnv, build: Callable[[], TextEnv], made: list[TextEnv], seed: int, steps: int) -> str:
    ids = env.task_ids("test")
    task = ids[1] if len(ids) > 1 else ids[0]
    first = _episode(env, task, seed, steps)
    other = build()
    made.append(other)
    second = _episode(other, task, seed, steps)
    _require(first == second, f"two instances played task {task!r} with seed {seed} differently ("
             f"{_first_difference(first, second)})",
             "draw every random choice from a generator seeded in _reset from its seed (random.Random(seed)), "
             "never from the global random module, the clock, or state kept from an earlier episode")
    _episode(env, ids[0], seed + 1, steps)  # another episode in between, on the first instance
    again = _episode(env, task, seed, steps)
    _require(first == again, f"one instance played task {task!r} with seed {seed} differently after another "
             f"episode ({_first_difference(first, again)})",
             "reset every piece of episode state in _reset; nothing may carry over from an earlier episode")
    return f"task {task!r}, seed {seed}, {len(first) - 1} steps, two instances"


def _restore(env: TextEnv, seed: int, steps: int) -> None:
    ids = env.task_ids("test")
    _episode(env, ids[0], seed, steps)
    actions, last_obs, last_info = list(env.actions), env.last_observation, env.info()
    snap = env.snapshot()
    env.reset(task_id=ids[-1], seed=seed + 1)
    obs, info = env.restore(snap)
    fix = ("the state must follow from (task, seed, actions) alone: _reset must rebuild everything, "
           "and _step must depend on nothing but the state")
    _require(obs == last_obs, f"restore(snapshot) gave {obs!r:.120}, not {last_obs!r:.120}", fix)
    _require(info["admissible_actions"] == last_info["admissible_actions"],
             "restore(snapshot) lists other admissible actions", fix)
    _require(env.actions == actions, f"restore(snapshot) left actions {env.actions!r}", fix)
    obs2, _ = env.restore(actions)
    _require(obs2 == last_obs, f"restore(actions) gave {obs2!r:.120}, not {last_obs!r:.120}", fix)


def _pickle(env: TextEnv, seed: int, steps: int) -> None:
    _episode(env, env.task_ids("test")[0], seed, min(steps, 3))
    try:
        clone = pickle.loads(pickle.dumps(env))
    except Exception as exc:  # noqa: BLE001 - a pickling failure is the finding
        raise _Failed(f"pickling raised {type(exc).__name__}: {exc}",
                      "keep constructor arguments plain data (they are passed to super().__init__ and "
                      "rebuild the env in worker processes); do not override __reduce__") from None
    try:
        fix = "do not override __reduce__; the env is rebuilt from its constructor arguments and replayed"
        _require(clone.last_observation == env.last_observation and clone.actions == env.actions,
                 "a pickled copy is in another state", fix)
        _require(clone.admissible_actions() == env.admissible_actions() and clone.score == env.score,
                 "a pickled copy lists other actions or has another score", fix)
        _require(clone.name == env.name, f"a pickled copy is named {clone.name!r}, not {env.name!r}", fix)
    finally:
        clone.close()


def _expert(env: TextEnv, tasks: int) -> str:
    if type(env)._expert is TextEnv._expert:
        return "skipped: the env has no expert (_expert); synthesis and the helper work without one"
    ids = env.task_ids("test")[:max(1, tasks)]
    failures = []
    for task in ids:
        env.reset(task_id=task, seed=0)
        info: dict[str, Any] = {}
        done = False
        while not done:
            action = env.expert_action()
            _require(action is not None, f"on task {task!r} the expert gave up after {env.actions!r:.120}",
                     "_expert must return an action from every state it can reach, or the env must not define it")
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        if not (info.get("success") and abs(float(info.get("score", 0.0)) - 1.0) < 1e-6):
            failures.append(f"{task} (score {info.get('score')}, {len(env.actions)} steps)")
    _require(not failures, f"the expert failed {len(failures)} of {len(ids)} test tasks: {', '.join(failures[:3])}",
             "the expert must solve each task (success with score 1.0) within max_steps; fix _expert or the "
             "success condition in _step")
    return f"solved {len(ids)} test task(s)"


def _helper_view(env: TextEnv) -> None:
    out = type(env).helper_view(env.last_observation or "observation")
    _require(isinstance(out, str), f"helper_view returned {type(out).__name__}",
             "helper_view(state_text) is a classmethod returning the text a helper reads of a state")


def _rm_observation(env: TextEnv) -> None:
    for last in (False, True):
        out = type(env).rm_observation(env.last_observation or "observation", last)
        _require(isinstance(out, str), f"rm_observation returned {type(out).__name__}",
                 "rm_observation(observation, last) is a classmethod returning the text reward models read")
