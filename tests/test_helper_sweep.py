"""The sweep schedule of collection (every set of ask steps, for a deterministic base) and the action
memo that makes it cost states, not episodes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentcritic import envs
from agentcritic.agents.memo import ActionMemo, MemoAgent
from agentcritic.cli import app
from agentcritic.helper.collect import ask_sets, run_collect, sweep_key
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.episode_files import read_episodes
from agentcritic.helper.helper_config import CollectConfig
from agentcritic.helper.interventions import ExpertIntervention
from agentcritic.helper.tabular import TabularModel


def _records(folder: Path) -> dict[str, dict]:
    return {row["key"]: row["record"] for row in map(json.loads, (folder / "episodes.jsonl").read_text().splitlines())}


def test_ask_sets_are_every_set_of_steps_of_a_size() -> None:
    assert ask_sets(3, 0) == [()]
    assert ask_sets(3, 1) == [((0, None),), ((1, None),), ((2, None),)]
    assert len(ask_sets(15, 2)) == 105 and ask_sets(3, 2)[0] == ((0, None), (1, None))
    two = ask_sets(2, 1, ["cheap", "dear"])
    assert two == [((0, "cheap"),), ((0, "dear"),), ((1, "cheap"),), ((1, "dear"),)]
    assert sweep_key("t", ((3, None), (7, None)), 0) == "t|asks=3,7|0"
    assert sweep_key("t", (), 1) == "t|asks=-|1"


def test_a_sweep_asks_exactly_at_each_step_and_records_repeats(tmp_path: Path) -> None:
    config = CollectConfig(env="household", policy="random", schedule="sweep", limit=2, n=1)
    summary = run_collect(config, tmp_path, progress=False)
    recs = _records(tmp_path)
    horizon = envs.make("household").max_steps
    assert len(recs) == summary["expected_episodes"] == 2 * (1 + horizon)
    for key, rec in recs.items():
        task, asks = key.split("|")[0], key.split("|")[1].removeprefix("asks=")
        base = recs[f"{task}|asks=-|0"]
        if rec.get("repeat_of"):  # the episode ended before the ask: it is the base episode again
            assert rec["repeat_of"] == f"{task}|asks=-|0" and int(asks) >= base["steps"]
            continue
        helped = [j for j, t in enumerate(rec["transitions"]) if t["helped"]]
        assert helped == ([] if asks == "-" else [int(asks)]), key
        assert rec["interventions"] == len(helped)
    kept = [r for r in recs.values() if not r.get("repeat_of")]
    assert summary["episodes"] == len(kept) and summary["repeats"] == len(recs) - len(kept)
    assert len(read_episodes(tmp_path)) == len(kept), "readers skip the repeats"
    # the fewest-asks oracle of each task is read off the same records
    for task, found in summary["fewest_asks"]["tasks"].items():
        wins = [len(r["meta"]["asks"]) for r in kept if r["task_id"] == task and r["success"]]
        assert (found["asks"] if found else None) == (min(wins) if wins else None)
    assert sum(summary["fewest_asks"]["counts"].values()) == 2


def test_on_the_sweep_every_state_the_base_reaches_has_both_branches_logged(tmp_path: Path) -> None:
    # the random base re-seeded per task is deterministic along one path: the sweep branches off it
    run_collect(CollectConfig(env="household", policy="random", schedule="sweep", limit=1, n=1), tmp_path,
                progress=False)
    episodes = read_episodes(tmp_path)
    # off the base path (after an ask) one branch is logged: a stand-in PRM values the other
    table = TabularModel.from_episodes(episodes, state_key="prefix", prm=lambda pairs: [0.5] * len(pairs))
    base = next(ep for ep in episodes if not any(t.helped for t in ep.transitions))
    for j, t in enumerate(base.transitions):
        s = table.lookup(table.key_for(step=j, task_id=t.task_id, state_key=t.state_key))
        assert s is not None
        assert table.counts[0][s] > 0 and table.counts[1][s] > 0, f"step {j}: a branch is missing"


def test_cli_sweep_reports_per_number_of_asks_and_the_fewest_asks(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["collect", "--env", "household", "--policy", "random", "--schedule", "sweep",
                                      "--n", "1", "--limit", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 ask(s) success" in result.output and "1 ask(s) success" in result.output
    assert "fewest asks that rescue a task" in result.output


class _Counting:
    """A deterministic agent (the expert) that counts its calls."""

    name = "counting-expert"

    def __init__(self) -> None:
        from agentcritic.agents import ExpertAgent

        self.inner, self.calls = ExpertAgent(), 0

    def reset(self, env, task_id, seed) -> None:
        self.inner.reset(env, task_id, seed)

    def act(self, traj, info):
        self.calls += 1
        return self.inner.act(traj, info)


def test_the_memo_calls_the_agent_once_per_state_and_changes_no_action() -> None:
    env = envs.make("household")
    task = env.task_ids("train", limit=1)[0]
    plain, counted = _Counting(), _Counting()
    memo_agent = MemoAgent(counted, ActionMemo())
    help_ = ExpertIntervention()
    first = run_helped_episode(env, plain, help_, task, lambda s, t: False, seed=3)
    again = run_helped_episode(env, memo_agent, help_, task, lambda s, t: False, seed=3)
    assert again.trajectory.actions == first.trajectory.actions
    calls = counted.calls
    assert calls == len(first.trajectory.steps)
    run_helped_episode(env, memo_agent, help_, task, lambda s, t: False, seed=3)
    assert counted.calls == calls, "the same episode again costs no call"
    asked = run_helped_episode(env, memo_agent, help_, task, lambda s, t: t == 1, seed=3)
    # up to the ask the states are known; after it, the helped step (actor "expert") makes new ones
    assert counted.calls == calls + len(asked.trajectory.steps) - 2
    run_helped_episode(env, memo_agent, help_, task, lambda s, t: False, seed=4)
    assert counted.calls > calls + len(asked.trajectory.steps) - 2, "another seed is another episode"


def _constant_prm(items):
    return [0.5] * len(items)


def test_the_oracle_rows_come_from_the_sweep_and_a_wrong_run_is_refused(tmp_path: Path) -> None:
    import pytest

    from agentcritic.helper.ask_steps import ORACLE_METHOD, OracleDataError, oracle_from_sweep, oracle_rows

    from agentcritic.pipeline import run_kind

    sweep = tmp_path / "sweep"  # through the stage contract, as the CLI runs it: the run records its settings
    summary = run_kind("collect", CollectConfig(env="household", policy="expert", schedule="sweep", split="test",
                                                limit=2, n=1), sweep, progress=False).summary
    tasks = list(summary["fewest_asks"]["tasks"])
    oracle = oracle_from_sweep(sweep, tasks, env="household", split="test")
    assert all(found == {"asks": 0, "steps": []} for found in oracle["tasks"].values()), "the expert needs no help"
    rows = oracle_rows(oracle, ["0", "1", "inf"])
    assert [r["method"] for r in rows] == [ORACLE_METHOD] * 3 and all(r["oracle"] for r in rows)
    assert all(r["success_rate"] == 1.0 and r["mean_interventions"] == 0.0 and r["tasks"] == 2 for r in rows)
    # a task that needs one ask counts from C = 1 on, with its ask spent
    rows = oracle_rows({"tasks": {"a": None, "b": {"asks": 1, "steps": [4]}, "c": {"asks": 0, "steps": []}},
                        "rescuing_steps": {}}, ["0", "1", "inf"])
    assert [round(r["success_rate"], 3) for r in rows] == [0.333, 0.667, 0.667]
    assert [round(r["mean_interventions"], 3) for r in rows] == [0.0, 0.333, 0.333]
    with pytest.raises(OracleDataError, match="split 'test'"):
        oracle_from_sweep(sweep, tasks, env="household", split="dev")
    with pytest.raises(OracleDataError, match="larger"):
        oracle_from_sweep(sweep, [*tasks, "pnp-0199"], env="household", split="test")
    coin = tmp_path / "coin"
    run_kind("collect", CollectConfig(env="household", policy="random", split="test", limit=1, n=1, p_grid=[0.5]),
             coin, progress=False)
    with pytest.raises(OracleDataError, match="schedule 'sweep'"):
        oracle_from_sweep(coin, tasks[:1], env="household", split="test")
    with pytest.raises(OracleDataError, match="not a collect run"):
        oracle_from_sweep(tmp_path, tasks, env="household", split="test")


def test_eval_rows_say_where_each_request_began(tmp_path: Path) -> None:
    from agentcritic.agents import ExpertAgent
    from agentcritic.helper.ask_steps import ask_step_counts
    from agentcritic.helper.evaluate_helper import DeciderFactory, run_method_episodes

    run_collect(CollectConfig(env="household", policy="random", schedule="sweep", limit=2, n=1), tmp_path,
                progress=False)
    table = TabularModel.from_episodes(read_episodes(tmp_path), prm=_constant_prm)
    env = envs.make("household")
    tasks = env.task_ids("test", limit=3)
    rows = run_method_episodes(env, lambda seed: ExpertAgent(), ExpertIntervention(), tasks, ["never", "always"],
                               [0, 2], DeciderFactory(table, prm=_constant_prm), split="test", progress=False)
    played = {(r["method"], r["budget"]): r for r in rows if not r.get("same_as")}
    assert all(r["ask_steps"] == [0, 1] for (m, b), r in played.items() if m == "always" and b == "2")
    assert ask_step_counts(rows) == {"never": {"0": {}}, "always": {"2": {0: 3, 1: 3}}}


def test_the_auto_state_key_is_prefix_for_a_sweep_and_bins_otherwise(tmp_path: Path) -> None:
    from agentcritic.helper.helper_config import resolve_state_key
    from agentcritic.pipeline import run_kind

    run_kind("collect", CollectConfig(env="household", policy="random", schedule="sweep", limit=1, n=1),
             tmp_path / "sweep", progress=False)
    run_kind("collect", CollectConfig(env="household", policy="random", limit=1, n=1, p_grid=[0.5]),
             tmp_path / "coin", progress=False)
    assert resolve_state_key("auto", tmp_path / "sweep") == "prefix"
    assert resolve_state_key("auto", tmp_path / "sweep" / "episodes.jsonl") == "prefix"
    assert resolve_state_key("auto", tmp_path / "coin") == "bins"
    assert resolve_state_key("bins", tmp_path / "sweep") == "bins"
    (tmp_path / "hand.jsonl").write_text("")
    assert resolve_state_key("auto", tmp_path / "hand.jsonl") == "bins"


def test_pairs_are_tried_only_on_the_tasks_no_single_ask_rescues(tmp_path: Path) -> None:
    config = CollectConfig(env="household", policy="random", schedule="sweep", sweep_asks=2, limit=3, n=1)
    summary = run_collect(config, tmp_path, progress=False)
    recs = _records(tmp_path)
    horizon = envs.make("household").max_steps
    one = run_collect(config.model_copy(update={"sweep_asks": 1}), tmp_path / "one", progress=False)["fewest_asks"]
    unrescued = [t for t, f in one["tasks"].items() if f is None]
    pairs = {key.split("|")[0] for key in recs if key.split("|")[1].count(",") == 1}
    assert pairs == set(unrescued) and unrescued, "the random base leaves some task unrescued by one ask"
    assert summary["expected_episodes"] == len(recs) == 3 * (1 + horizon) + len(unrescued) * horizon * (horizon - 1) // 2
    again = run_collect(config, tmp_path, progress=False)  # resumes both phases: nothing new
    assert again["written"] == 0 and again["resumed_from"] == len(recs) and again["expected_episodes"] == len(recs)
    grown = tmp_path / "grown"  # a sweep of 2 tasks, then the same folder at 3: the pairs of the first two are kept
    run_collect(config.model_copy(update={"limit": 2}), grown, progress=False)
    more = run_collect(config, grown, progress=False)
    assert _records(grown).keys() == recs.keys() and more["expected_episodes"] == len(recs)


def _episode(asks: set[int], rescue: set[int], length: int = 3) -> dict:
    """A deterministic task's episode asking at ``asks``: it succeeds when one of them is in ``rescue``."""
    from agentcritic.types import Transition

    trans, path = [], ["t"]
    for j in range(length):
        helped = j in asks
        action = f"x{j}" if helped else f"a{j}"
        trans.append(Transition(task_id="t", state_key=json.dumps(path), state_text=f"state {' '.join(path[1:])}",
                                helped=helped, actor="expert" if helped else "agent",
                                next_state_key=json.dumps([*path, action]), done=j == length - 1))
        path = [*path, action]
        if helped and j in rescue:
            trans[-1].done = True
            break
    success = bool(asks & rescue)
    for t in trans:
        t.success = success
    return {"transitions": trans, "success": success}


def test_ties_now_labels_every_step_where_asking_is_optimal_and_helps() -> None:
    from agentcritic.helper.dp import ask_now_labels, solve_budget
    from agentcritic.helper.helper_config import HelperLabelConfig
    from agentcritic.helper.helper_trainer import label_examples

    # asking at step 0 or 1 rescues the task, at step 2 it does not: a sweep's episodes
    episodes = [_episode(asks, rescue={0, 1}) for asks in (set(), {0}, {1}, {2})]
    table = TabularModel.from_episodes(episodes, prm=_constant_prm)
    sol = solve_budget(table, 1)
    base = [table.lookup(table.key_for(step=j, task_id="t", state_key=episodes[0]["transitions"][j].state_key))
            for j in range(3)]
    assert [int(sol.asks[s, 1]) for s in base] == [0, 1, 0], "π* waits for the last rescuing step"
    now = ask_now_labels(sol)
    assert [int(now[s, 1]) for s in base] == [1, 1, 0], "asking at step 0 is as good, and beats never asking"
    assert all(int(now[s, 0]) == 0 for s in base), "no budget, no ask"
    later = {(x.state_text, x.budget_left): x.label for x in label_examples(table, HelperLabelConfig(budget=1))}
    early = {(x.state_text, x.budget_left): x.label for x in label_examples(table, HelperLabelConfig(budget=1, ties="now"))}
    assert later[("state ", 1)] == 0 and early[("state ", 1)] == 1
    assert later[("state a0", 1)] == early[("state a0", 1)] == 1


def test_ties_frugal_labels_no_ask_for_budget_to_spare() -> None:
    from agentcritic.helper.dp import ask_now_labels, solve_budget
    from agentcritic.helper.helper_config import HelperLabelConfig
    from agentcritic.helper.helper_trainer import label_examples

    # only an ask at step 2 rescues; the pair (0, 2) was logged too, so with two asks left an ask at
    # step 0 is "as good" (the rescue is still ahead after it) but spends one request more
    episodes = [_episode(asks, rescue={2}) for asks in (set(), {0}, {1}, {2}, {0, 2})]
    table = TabularModel.from_episodes(episodes, prm=_constant_prm)
    sol = solve_budget(table, 2)
    start = table.lookup(table.key_for(step=0, task_id="t", state_key=episodes[0]["transitions"][0].state_key))
    rescue = table.lookup(table.key_for(step=2, task_id="t", state_key=episodes[0]["transitions"][2].state_key))
    now, frugal = ask_now_labels(sol), ask_now_labels(sol, frugal=True)
    assert int(now[start, 2]) == 1, "'now' asks at step 0 with two left: the value is the same"
    assert int(frugal[start, 2]) == 0, "'frugal' does not: waiting rescues with one request, asking first needs two"
    assert int(now[start, 1]) == int(frugal[start, 1]) == 0, "with one left an ask at step 0 loses the rescue"
    assert int(frugal[rescue, 1]) == int(frugal[rescue, 2]) == 1, "the rescuing step says ask at every budget"
    labels = {(x.state_text, x.budget_left): x.label
              for x in label_examples(table, HelperLabelConfig(budget=2, ties="frugal"))}
    assert labels[("state ", 2)] == 0 and labels[("state a0 a1", 2)] == 1


def test_logged_only_labels_skip_the_states_a_prm_would_decide() -> None:
    from agentcritic.helper.helper_config import HelperLabelConfig
    from agentcritic.helper.helper_trainer import label_examples

    episodes = [_episode(asks, rescue={1}) for asks in (set(), {0}, {1}, {2})]
    table = TabularModel.from_episodes(episodes, prm=_constant_prm)
    every = {x.state_text for x in label_examples(table, HelperLabelConfig(budget=2))}
    logged = {x.state_text for x in label_examples(table, HelperLabelConfig(budget=2, logged_only=True))}
    assert logged == {"state ", "state a0", "state a0 a1"}, "the base path: both branches logged"
    assert "state x0" in every - logged, "after the ask at step 0 only the base's branch was logged"


def test_eval_helper_plays_the_helper_at_the_threshold_asked_for(tiny_bert, tmp_path: Path) -> None:
    from agentcritic.helper.evaluate_helper import build_parts, eval_spec
    from agentcritic.helper.helper_config import EvalHelperConfig
    from agentcritic.helper.helper_model import Helper, HelperClassifier
    from agentcritic.pipeline import run_kind
    from agentcritic.rm import ProcessRewardModel

    run_kind("collect", CollectConfig(env="household", policy="random", schedule="sweep", limit=1, n=1),
             tmp_path / "c", progress=False)
    ProcessRewardModel(tiny_bert, max_length=32).save_pretrained(tmp_path / "prm" / "model")
    Helper(HelperClassifier(tiny_bert, max_length=32), 0.5, 2, {"expert": 1.0}).save(tmp_path / "h")

    def helper_of(**kw):
        config = EvalHelperConfig(data=str(tmp_path / "c"), prm=str(tmp_path / "prm"), helper=str(tmp_path / "h"), **kw)
        spec = eval_spec(config)
        assert spec["state_key"] == "prefix", "auto: a sweep's table is the exact prefix tree"
        return build_parts(spec)[2].helper

    assert helper_of().threshold == 0.5, "the threshold it was saved with"
    assert helper_of(helper_threshold=0.8).threshold == 0.8

    # an --oracle run that does not fit (the training sweep, not the test split's) is said before any episode
    import pytest

    from agentcritic.helper.ask_steps import OracleDataError
    from agentcritic.helper.evaluate_helper import run_eval_helper

    config = EvalHelperConfig(data=str(tmp_path / "c"), prm=str(tmp_path / "prm"), methods=["never"], limit=1,
                              oracle=str(tmp_path / "c"))
    with pytest.raises(OracleDataError, match="split 'test'"):
        run_eval_helper(config, tmp_path / "e", progress=False)
    assert not (tmp_path / "e" / "episodes.jsonl").exists()
