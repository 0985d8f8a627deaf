"""eval-helper: the numbers of the results table, the hard cap for every method, and the DP's
predicted success equal to the measured one on a case where the table is exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agentcritic import envs
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.evaluate_helper import (
    DeciderFactory,
    dp_predictions,
    format_table,
    run_method_episodes,
    summarise_rows,
)
from agentcritic.helper.interventions import ExpertIntervention
from agentcritic.helper.tabular import TabularModel
from agentcritic.intervals import wilson

INF = math.inf


class ParityAgent:
    """Test double: a deterministic base that is right on even-numbered tasks and gives up on odd ones."""

    name = "parity"

    def reset(self, env, task_id, seed):
        self.env, self.good = env, int(task_id.split("-")[1]) % 2 == 0

    def act(self, history, info):
        return self.env.expert_action() if self.good else "end task"


def constant_prm(items):
    return [0.5] * len(items)


TASKS = ["pnp-0000", "pnp-0001", "s_obj-0002", "s_obj-0003", "s_hum-0004", "s_hum-0005"]


@pytest.fixture(scope="module")
def setup():
    env = envs.make("household")
    episodes = []
    # ask for the first k steps, then let the base act: every state on the expert's path gets both h
    for task in TASKS:
        for k in range(7):
            ep = run_helped_episode(env, ParityAgent(), ExpertIntervention(), task, lambda s, step, k=k: step < k)
            episodes.append({"transitions": ep.transitions, "success": ep.success})
    table = TabularModel.from_episodes(episodes, prm=constant_prm)
    return env, table


def test_summary_numbers_on_a_tiny_case() -> None:
    rows = [
        {"method": "never", "budget": "0", "task_id": "a", "success": False, "interventions": 0, "cost": 0.0, "steps": 5},
        {"method": "never", "budget": "0", "task_id": "b", "success": True, "interventions": 0, "cost": 0.0, "steps": 3},
        {"method": "dp", "budget": "1", "task_id": "a", "success": True, "interventions": 1, "cost": 2.0, "steps": 4},
        # two samples of task b: one task, counted once (its success ½) in the interval
        {"method": "dp", "budget": "1", "task_id": "b", "success": True, "interventions": 0, "cost": 0.0, "steps": 4},
        {"method": "dp", "budget": "1", "task_id": "b", "success": False, "interventions": 1, "cost": 2.0, "steps": 6},
        {"method": "dp", "budget": "inf", "task_id": "a", "success": True, "interventions": 4, "cost": 8.0, "steps": 4},
    ]
    table = {(r["method"], r["budget"]): r for r in summarise_rows(rows, [0, 1, INF])}
    assert table[("dp", "1")]["success_rate"] == pytest.approx(2 / 3)
    assert table[("dp", "1")]["mean_interventions"] == pytest.approx(2 / 3)
    assert table[("dp", "1")]["max_interventions"] == 1 and table[("dp", "1")]["mean_cost"] == pytest.approx(4 / 3)
    assert table[("dp", "inf")]["max_interventions"] == 4
    # never ignores C: one run, reported at every budget
    assert [table[("never", c)]["success_rate"] for c in ("0", "1", "inf")] == [0.5, 0.5, 0.5]
    assert ("dp", "0") not in table
    # n and the 95 % Wilson interval count tasks: dp at C=1 is tasks a (1) and b (½ over two samples)
    assert table[("dp", "1")]["episodes"] == 3 and table[("dp", "1")]["tasks"] == 2
    assert table[("dp", "1")]["success_interval"] == pytest.approx(list(wilson(1.5, 2)))
    assert table[("never", "0")]["success_interval"] == pytest.approx([0.0945, 0.9055], abs=1e-4)  # 1 of 2
    assert table[("dp", "inf")]["success_interval"] == pytest.approx([0.2065, 1.0], abs=1e-4)  # 1 of 1
    text = format_table(list(table.values()))
    dp_line = next(line for line in text.splitlines() if line.startswith("dp ") and " 1 " in line)
    assert dp_line.split() == ["dp", "1", "66.7%", "20–97%", "2", "0.67", "1", "3"]
    assert "95% interval" in text.splitlines()[0]


def test_every_method_respects_the_cap_and_never_asks_nothing(setup, tmp_path: Path) -> None:
    env, table = setup

    class AskEvenSteps:
        name = "helper"

        def ask(self, state, step, budget_left):
            return step % 2 == 0

    factory = DeciderFactory(table, prm=constant_prm, helper=AskEvenSteps(), seed=0)
    methods = ["never", "always", "random", "prm_threshold", "prm_gain", "dp", "helper"]
    budgets = [0.0, 1.0, 2.0, INF]
    rows = run_method_episodes(env, lambda seed: ParityAgent(), ExpertIntervention(), TASKS, methods, budgets,
                               factory, split="train", progress=False)
    for r in rows:
        cap = INF if r["budget"] == "inf" else int(r["budget"])
        assert r["interventions"] <= cap, r
        assert r["interventions"] == sum(a == "expert" for a in r["actors"])
    summary = {(r["method"], r["budget"]): r for r in summarise_rows(rows, budgets)}
    assert summary[("never", "inf")]["mean_interventions"] == 0
    assert summary[("never", "0")]["success_rate"] == 0.5  # the even tasks
    assert summary[("always", "inf")]["success_rate"] == 1.0
    assert summary[("always", "1")]["max_interventions"] == 1
    assert summary[("helper", "2")]["max_interventions"] <= 2
    from agentcritic.report.plots import write_success_vs_interventions

    png = write_success_vs_interventions(list(summary.values()), tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dp_predicted_success_equals_measured_where_the_table_is_exact(setup) -> None:
    env, table = setup
    factory = DeciderFactory(table, prm=constant_prm)
    budgets = [0.0, 1.0, INF]
    rows = run_method_episodes(env, lambda seed: ParityAgent(), ExpertIntervention(), TASKS, ["dp"], budgets,
                               factory, split="train", progress=False)
    measured = {r["budget"]: r for r in summarise_rows(rows, budgets)}
    predicted = dp_predictions(factory, TASKS, budgets)
    for c in ("0", "1", "inf"):
        assert predicted[c]["predicted_success"] == pytest.approx(measured[c]["success_rate"])
        assert predicted[c]["predicted_interventions"] == pytest.approx(measured[c]["mean_interventions"])
    # one intervention cannot rescue a base that gives up at every step; unlimited help rescues all
    assert measured["1"]["success_rate"] == 0.5 and measured["1"]["mean_interventions"] == 0
    assert measured["inf"]["success_rate"] == 1.0
    odd = [r for r in rows if r["budget"] == "inf" and int(r["task_id"].split("-")[1]) % 2]
    even = [r for r in rows if r["budget"] == "inf" and not int(r["task_id"].split("-")[1]) % 2]
    assert all(r["interventions"] == r["steps"] for r in odd) and all(r["interventions"] == 0 for r in even)


def test_rows_are_resumed_from_the_shard(setup, tmp_path: Path) -> None:
    from agentcritic.store import Shard

    env, table = setup
    factory = DeciderFactory(table, prm=constant_prm)
    calls = []

    def agent(seed):
        calls.append(seed)
        return ParityAgent()

    with Shard(tmp_path / "episodes.jsonl") as shard:
        first = run_method_episodes(env, agent, ExpertIntervention(), TASKS[:2], ["never", "always"], [1.0], factory,
                                    split="test", shard=shard, progress=False)
    n = len(calls)
    with Shard(tmp_path / "episodes.jsonl") as shard:
        again = run_method_episodes(env, agent, ExpertIntervention(), TASKS[:2], ["never", "always"], [1.0], factory,
                                    split="test", shard=shard, progress=False)
    assert len(calls) == n == 4 and again == first
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 4 and len({json.loads(l)["key"] for l in lines}) == 4


def test_every_method_at_c0_repeats_one_played_episode(setup) -> None:
    env, table = setup
    factory = DeciderFactory(table, prm=constant_prm)
    played = []

    def agent(seed):
        played.append(seed)
        return ParityAgent()

    methods = ["always", "dp", "never", "random"]
    rows = run_method_episodes(env, agent, ExpertIntervention(), TASKS[:2], methods, [0.0, INF], factory,
                               split="test", progress=False)
    # per task: one C = 0 episode for all four methods, then always, dp and random at C = inf
    assert len(played) == 2 * (1 + 3) and len(rows) == 2 * (4 + 3)
    at_zero = [r for r in rows if r["budget"] == "0"]
    assert sorted(r["method"] for r in at_zero) == sorted(methods * 2)
    for task in TASKS[:2]:
        same = [r for r in at_zero if r["task_id"] == task]
        assert len({(r["success"], tuple(r["actions"]), r["interventions"]) for r in same}) == 1
        assert all(r["interventions"] == 0 for r in same)
    assert [r.get("same_as") for r in at_zero if r["method"] == "always"] == [None, None]  # the one played
    assert all(r["same_as"].startswith("test|always|C=0|") for r in at_zero if r["method"] != "always")


def test_memo_scorer_scores_each_state_once_and_survives_a_reload(tmp_path: Path) -> None:
    from agentcritic.helper.prm_scores import MemoScorer

    seen = []

    def prm(items):
        seen.extend(items)
        return [0.25 if h else 0.75 for _, h in items]

    memo = MemoScorer(prm)
    assert list(memo([("a", False), ("a", True), ("b", False)])) == [0.75, 0.25, 0.75]
    assert list(memo([("b", False), ("a", True)])) == [0.75, 0.25] and len(seen) == 3
    again = MemoScorer.load(prm, memo.save(tmp_path / "scores.json", "prm-1"), "prm-1")
    assert list(again([("a", False), ("c", True)])) == [0.75, 0.25] and seen[3:] == [("c", True)]
    other = MemoScorer.load(prm, tmp_path / "scores.json", "prm-2")  # another PRM's scores are not reused
    assert other.known == {} and list(other([("a", False)])) == [0.75] and seen[4:] == [("a", False)]
    (tmp_path / "torn.json").write_text('{"source": "prm-1", "scores": {"0:')  # a torn or foreign file
    assert MemoScorer.load(prm, tmp_path / "torn.json", "prm-1").known == {}

    # a run starts from an earlier stage's file; a broken one is copied as it is and ignored when loaded
    from agentcritic.helper.prm_scores import seed_scores

    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00 not json")
    assert seed_scores(tmp_path / "run" / "scores.json", tmp_path / "binary.json") is True
    assert MemoScorer.load(prm, tmp_path / "run" / "scores.json", "prm-1").known == {}
    assert seed_scores(tmp_path / "run" / "scores.json", tmp_path / "torn.json") is False  # the run has its own
    assert seed_scores(tmp_path / "run2.json", tmp_path / "missing.json") is False and not (tmp_path / "run2.json").exists()


@pytest.mark.slow
def test_cli_collect_train_prm_eval_helper_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agentcritic.cli import app
    from agentcritic.rm.backbone import make_tiny_backbone

    tiny = make_tiny_backbone(tmp_path / "tiny", "bert")
    run = CliRunner()
    r = run.invoke(app, ["collect", "--env", "game24", "--policy", "random", "--limit", "4", "--n", "1",
                         "--p-grid", "0,0.5,1", "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["train-prm", "--data", str(tmp_path / "c"), "--out", str(tmp_path / "p"),
                         "--backbone", str(tiny), "--set", "max_length=64", "--set", "training.progress=false"])
    assert r.exit_code == 0, r.output
    assert "AUROC" in r.output and (tmp_path / "p" / "reliability.png").exists()
    r = run.invoke(app, ["eval-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"),
                         "--methods", "never,always,random,prm_threshold,prm_gain,dp", "--budgets", "0,1,inf",
                         "--limit", "2", "--out", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert res["env"] == "game24" and res["tasks"] == 2
    for row in res["results"]:
        assert row["budget"] == "inf" or row["max_interventions"] <= int(row["budget"])
    assert {r["budget"] for r in res["dp_train"]} == {"0", "1", "inf"}
    assert (tmp_path / "e" / "success_vs_interventions.png").exists()
    # the same evaluation in two worker processes gives the same episodes
    r = run.invoke(app, ["eval-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"),
                         "--methods", "never,always,random,prm_threshold,prm_gain,dp", "--budgets", "0,1,inf",
                         "--limit", "2", "--workers", "2", "--out", str(tmp_path / "w")])
    assert r.exit_code == 0, r.output

    def episodes(folder):
        return {json.loads(line)["key"]: {k: v for k, v in json.loads(line)["record"].items()}
                for line in (folder / "episodes.jsonl").read_text().splitlines()}

    assert episodes(tmp_path / "w") == episodes(tmp_path / "e")
    assert json.loads((tmp_path / "w" / "results.json").read_text())["results"] == res["results"]
    r = run.invoke(app, ["eval-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"),
                         "--out", str(tmp_path / "e2")])
    assert r.exit_code == 2 and "--helper" in r.output


@pytest.mark.slow
@pytest.mark.parametrize("env", ["shop", "textworld"])
def test_the_whole_pipeline_runs_unchanged_on_shop_and_textworld(env: str, tmp_path: Path, monkeypatch) -> None:
    """collect -> train-prm -> train-helper -> eval-helper with the expert, the same commands as household;
    eval-helper starts from train-helper's PRM scores of the training table instead of scoring it again."""
    from typer.testing import CliRunner

    from agentcritic.cli import app
    from agentcritic.helper.prm_scores import MemoScorer
    from agentcritic.rm import ProcessRewardModel
    from agentcritic.rm.backbone import make_tiny_backbone

    scored: list[str] = []
    real_score = ProcessRewardModel.score

    def counting_score(self, items, *args, **kwargs):
        scored.extend(MemoScorer.key(text, actor != "agent") for text, actor in items)
        return real_score(self, items, *args, **kwargs)

    monkeypatch.setattr(ProcessRewardModel, "score", counting_score)

    tiny = str(make_tiny_backbone(tmp_path / "tiny", "bert"))
    run = CliRunner()
    steps = [
        ["collect", "--env", env, "--policy", "random", "--limit", "3", "--n", "1", "--p-grid", "0,0.5,1",
         "--out", str(tmp_path / "c")],
        ["train-prm", "--data", str(tmp_path / "c"), "--out", str(tmp_path / "p"), "--backbone", tiny,
         "--set", "max_length=64", "--set", "training.progress=false"],
        ["train-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"), "--out", str(tmp_path / "h"),
         "--backbone", tiny, "--max-steps", "2", "--budget", "1", "--set", "helper.max_length=64"],
        ["eval-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"), "--helper", str(tmp_path / "h"),
         "--methods", "never,always,dp,helper", "--budgets", "0,1,inf", "--limit", "1", "--out", str(tmp_path / "e")],
    ]
    for args in steps:
        scored.clear()
        r = run.invoke(app, args)
        assert r.exit_code == 0, f"{args[0]}: {r.output}"
    table_scores = json.loads((tmp_path / "h" / "prm_scores.json").read_text())["scores"]
    assert table_scores and scored and not set(scored) & set(table_scores)  # eval-helper scored only new states
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert res["env"] == env and res["intervention"] == "expert" and res["tabular_model"]["state_key"] == "bins"
    rows = {(row["method"], row["budget"]): row for row in res["results"]}
    assert set(rows) == {(m, b) for m in ("never", "always", "dp", "helper") for b in ("0", "1", "inf")}
    assert rows[("always", "inf")]["success_rate"] == 1.0  # the expert at every step solves the task
    assert rows[("always", "1")]["max_interventions"] == 1 and rows[("never", "inf")]["mean_interventions"] == 0


def test_prm_examples_carry_the_actor_tag_and_hold_out_whole_tasks(tmp_path: Path) -> None:
    from agentcritic.helper.collect import run_collect
    from agentcritic.helper.helper_config import CollectConfig, TrainPRMConfig
    from agentcritic.helper.prm import held_out_tasks, prm_examples

    run_collect(CollectConfig(env="household", policy="random", limit=10, n=1, p_grid=[0.0, 1.0]), tmp_path,
                progress=False)
    train, evals, sizes = prm_examples(TrainPRMConfig(data=str(tmp_path), eval_fraction=0.2))
    assert sizes["tasks"] == 10 and sizes["held_out_tasks"] == 2
    assert len(train) + len(evals) == sizes["train_examples"] + sizes["eval_examples"]
    assert {x.text.rsplit("\n", 1)[1] for x in train} == {"Next action by: agent", "Next action by: intervention"}
    assert not {x.group for x in train} & {x.group for x in evals}
    # p = 1 episodes (expert every step) succeed, so every helped example is labelled 1
    assert all(x.label == 1.0 for x in train if x.text.endswith("intervention"))
    averaged, _, _ = prm_examples(TrainPRMConfig(data=str(tmp_path), eval_fraction=0.2, average_by_state=True))
    assert len(averaged) <= len(train)
    assert held_out_tasks(["a", "b", "c", "d", "e"], 0.4, 0) == held_out_tasks(["e", "d", "c", "b", "a"], 0.4, 0)


def test_llm_calls_of_episodes_played_here_are_counted_in_their_rows(setup, tmp_path: Path) -> None:
    from agentcritic import llm
    from agentcritic.parallel import llm_calls_of
    from agentcritic.store import Shard

    env, table = setup
    lm = llm.load("scripted", answers=["go"] * 100)

    class TalkingAgent(ParityAgent):
        def act(self, history, info):
            lm.generate("what next?")  # one LLM call a step the base takes
            return super().act(history, info)

    factory = DeciderFactory(table, prm=constant_prm)
    with Shard(tmp_path / "episodes.jsonl") as shard:
        rows = run_method_episodes(env, lambda seed: TalkingAgent(), ExpertIntervention(), TASKS[:2], ["never"],
                                   [1.0], factory, split="test", shard=shard, progress=False)
        counted = llm_calls_of(shard)
    base_steps = sum(r["actors"].count("agent") for r in rows)
    assert base_steps > 0 and counted.calls == base_steps and counted.failures == 0
    assert [r["llm"]["episodes"]["llm_calls"] for r in rows] == [r["actors"].count("agent") for r in rows]
