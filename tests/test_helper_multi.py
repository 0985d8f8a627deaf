"""Several interventions in one run: collect asks a randomly drawn one and logs whom; the DP chooses
whether and whom under their costs; the Gate spends the chosen one's cost; the helper scores each
affordable actor; eval-helper plays each kind alone and the mix, and the report plots success
against total cost."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentcritic import envs
from agentcritic.agents import RandomAgent
from agentcritic.helper.dp import solve_budget
from agentcritic.helper.episode import HelpChoiceError, run_helped_episode
from agentcritic.helper.evaluate_helper import (
    DeciderFactory,
    expand_methods,
    run_method_episodes,
    summarise_rows,
)
from agentcritic.helper.gate import Gate
from agentcritic.helper.helper_config import CollectConfig, HelperLabelConfig, InterventionConfig
from agentcritic.helper.interventions import ExpertIntervention, ModelIntervention
from agentcritic.helper.tabular import Episode, TabularModel
from agentcritic.types import Transition

from test_helper_eval import TASKS, ParityAgent, constant_prm  # noqa: E402

INF = math.inf
TWO = [InterventionConfig(kind="expert", name="expert", cost=4), InterventionConfig(kind="expert", name="cheap", cost=1)]


# ----------------------------------------------------------------------------------- collect
def test_collect_with_two_interventions_logs_both_and_draws_whom_at_random(tmp_path: Path) -> None:
    from agentcritic.helper.collect import run_collect
    from agentcritic.helper.episode_files import read_episodes
    from agentcritic.helper.helper_trainer import with_collection_settings

    config = CollectConfig(env="household", policy="random", limit=3, n=2, p_grid=[0.0, 1.0], interventions=TWO)
    from agentcritic.pipeline import run_kind

    summary = run_kind("collect", config, tmp_path / "a", progress=False).summary  # records the config too
    assert summary["interventions"] == [{"actor": "expert", "kind": "expert", "cost": 4.0, "takeover": 1},
                                        {"actor": "cheap", "kind": "expert", "cost": 1.0, "takeover": 1}]
    episodes = read_episodes(tmp_path / "a")
    helped = [[t.actor for t in ep.transitions if t.helped] for ep in episodes]
    assert {a for actors in helped for a in actors} == {"expert", "cheap"}
    assert any(len(set(actors)) == 2 for actors in helped)  # drawn per request, not per episode
    assert sum(not actors for actors in helped) == 6  # the p = 0 episodes ask nobody
    costs = {"expert": 4.0, "cheap": 1.0}
    records = [rec for rec in _records(tmp_path / "a")]
    assert all(rec["cost"] == sum(costs[t["actor"]] for t in rec["transitions"] if t["helped"]) for rec in records)
    # seeded: the same collection draws the same actors
    run_collect(config, tmp_path / "b", progress=False)
    assert sorted(map(tuple, helped)) == sorted(tuple(t.actor for t in ep.transitions if t.helped)
                                                for ep in read_episodes(tmp_path / "b"))
    # train-helper reads each intervention's cost and takeover from the recorded run
    labels = with_collection_settings(HelperLabelConfig(), tmp_path / "a")
    assert labels.costs == costs and labels.takeovers == {"expert": 1, "cheap": 1}


def _records(folder: Path) -> list[dict]:
    import json

    return [json.loads(line)["record"] for line in (folder / "episodes.jsonl").read_text().splitlines()]


def test_a_config_names_one_intervention_or_several_with_distinct_names() -> None:
    assert [i.actor for i in CollectConfig(interventions=TWO).offered] == ["expert", "cheap"]
    assert [i.actor for i in CollectConfig().offered] == ["expert"]
    with pytest.raises(ValidationError, match="not both"):
        CollectConfig(intervention=InterventionConfig(kind="model"), interventions=TWO)
    with pytest.raises(ValidationError, match=r"\['expert'\] repeat"):
        CollectConfig(interventions=[InterventionConfig(kind="expert"), InterventionConfig(kind="expert", cost=2)])
    # a recorded config (every field written out) reads back
    dumped = CollectConfig(interventions=TWO).model_dump(mode="json")
    assert CollectConfig.model_validate(dumped).interventions == TWO


# ----------------------------------------------------------------------------------- the DP
def one_step_table(strong_rescues: bool) -> TabularModel:
    """One task, one decision: the agent fails; 'expert' (listed first) always rescues; 'strong'
    rescues too when ``strong_rescues``."""
    episodes = []
    for who, wins in (("agent", False), ("expert", True), ("strong", strong_rescues)):
        for _ in range(3):
            episodes.append(Episode([Transition("t", "", "t:", who != "agent", who, who, True)], wins))
    return TabularModel.from_episodes(episodes)


COSTS = {"expert": 4, "strong": 1}


def test_the_dp_asks_the_cheaper_when_both_rescue_and_the_dearer_when_only_it_does() -> None:
    both = one_step_table(strong_rescues=True)
    start = both.lookup((0, "t", ""))
    sol = solve_budget(both, 5, COSTS)
    assert [sol.actor(start, b) for b in range(6)] == [None, "strong", "strong", "strong", "strong", "strong"]
    assert sol.values[start, 1] == 1.0 and sol.usage[start, 5] == 1.0
    only_expert = one_step_table(strong_rescues=False)
    sol = solve_budget(only_expert, 5, COSTS)
    assert [sol.actor(start, b) for b in range(6)] == [None, None, None, None, "expert", "expert"]
    assert sol.usage[start, 4] == 4.0
    # restricted to one kind: 'strong' alone never helps here, so the DP never asks it
    alone = solve_budget(only_expert, 5, COSTS, actors=["strong"])
    assert alone.predicted_success == 0.0 and not alone.asks.any()


def test_the_helper_labels_say_whom_the_dp_asks_under_each_offer() -> None:
    from agentcritic.helper.helper_trainer import label_examples

    table = one_step_table(strong_rescues=False)
    examples = label_examples(table, HelperLabelConfig(state_key="prefix", budget=5, costs=COSTS))
    label = {(x.offered, x.actor, x.budget_left): x.label for x in examples}
    assert label[(("expert", "strong"), "expert", 4)] == 1 and label[(("expert", "strong"), "strong", 4)] == 0
    assert label[(("expert", "strong"), "expert", 3)] == 0  # cannot pay for the expert, and strong does not help
    assert label[(("expert",), "expert", 5)] == 1 and label[(("strong",), "strong", 5)] == 0
    assert len(examples) == 5 * (2 + 1 + 1)  # budgets 1..5 × (mixed offer: 2 actors, each alone: 1)
    text = next(x.text for x in examples if x.offered == ("expert", "strong") and x.actor == "strong")
    assert text.endswith("Offered: expert, strong\nAsk: strong")


def test_ties_now_and_frugal_label_each_kind_where_asking_it_now_is_optimal() -> None:
    """The expert (cost 4) rescues at step 0 or 1; 'strong' (cost 1) only at step 1. π* waits for
    strong at step 1; `now` also marks the expert at step 0 (as good, with 4 left); `frugal` does
    not (waiting rescues for 1); with the expert alone offered both steps cost the same, so both say ask."""
    from agentcritic.helper.dp import ask_now_actions
    from agentcritic.helper.helper_trainer import label_examples

    def ep(*steps: tuple[str, str], wins: bool) -> Episode:
        path, out = "", []
        for j, (who, text) in enumerate(steps):
            nxt = path + who[0]
            out.append(Transition("t", path, text, who != "agent", who, nxt, j == len(steps) - 1))
            path = nxt
        return Episode(out, wins)

    episodes = [ep(("agent", "start"), ("agent", "later"), wins=False), ep(("expert", "start"), wins=True),
                ep(("agent", "start"), ("strong", "later"), wins=True), ep(("agent", "start"), ("expert", "later"), wins=True),
                ep(("strong", "start"), ("agent", "after strong"), wins=False)]
    table = TabularModel.from_episodes(episodes, prm=lambda items: [0.0] * len(items))  # unlogged: hopeless
    start, later = table.lookup((0, "t", "")), table.lookup((1, "t", "a"))
    sol = solve_budget(table, 5, COSTS)
    expert, strong = 1 + table.actors.index("expert"), 1 + table.actors.index("strong")
    assert sol.actor(start, 5) is None and sol.actor(later, 5) == "strong"
    now, frugal = ask_now_actions(sol), ask_now_actions(sol, frugal=True)
    assert now[start, 4, expert] == 1 and now[start, 4, strong] == 0 and now[start, 3, expert] == 0
    assert frugal[start, 4, expert] == 0 and frugal[later, 4, strong] == 1 and frugal[later, 4, expert] == 0

    def labels(ties: str) -> dict:
        cfg = HelperLabelConfig(state_key="prefix", budget=5, costs=COSTS, ties=ties)
        return {(x.state_text, x.offered, x.actor, x.budget_left): x.label for x in label_examples(table, cfg)}

    mixed = ("expert", "strong")
    assert labels("later")[("start", mixed, "expert", 4)] == 0 and labels("now")[("start", mixed, "expert", 4)] == 1
    frugal_labels = labels("frugal")
    assert frugal_labels[("start", mixed, "expert", 4)] == 0 and frugal_labels[("later", mixed, "strong", 1)] == 1
    assert frugal_labels[("start", ("expert",), "expert", 4)] == 1  # alone: asking now or at step 1 costs 4 either way
    assert frugal_labels[("start", ("strong",), "strong", 5)] == 0  # strong at step 0 does not rescue


# ----------------------------------------------------------------------------------- Gate and helper
class Wants:
    """A chooser that names the next actor of a list at every decision."""

    def __init__(self, *actors):
        self.actors, self.seen = list(actors), []

    def choose(self, state, step, budget_left):
        self.seen.append(budget_left)
        return self.actors.pop(0) if self.actors else None


def test_the_gate_spends_the_chosen_actors_cost_and_refuses_what_does_not_fit() -> None:
    chooser = Wants("expert", "expert", "strong", "strong")
    gate = Gate(chooser, 5, costs=COSTS)
    gate.reset()
    assert gate.choose("s", 0) == "expert" and gate.used == 4
    assert gate.choose("s", 1) is None and gate.used == 4  # the expert does not fit in the 1 left
    assert gate.choose("s", 2) == "strong" and gate.used == 5 and gate.requests == 2
    assert gate.choose("s", 3) is None and chooser.seen == [5, 1, 1]  # nothing left: not even consulted
    # a yes/no decider asks the one actor offered; with several it must say whom
    from agentcritic.helper.baselines import AlwaysAsk

    one = Gate(AlwaysAsk(), 2, costs={"strong": 1})
    one.reset()
    assert [one.choose("s", k) for k in range(3)] == ["strong", "strong", None]
    with pytest.raises(TypeError, match="choose"):
        Gate(AlwaysAsk(), 2, costs=COSTS).choose("s", 0)


def test_an_episode_calls_the_intervention_the_decider_names() -> None:
    env = envs.make("household")
    helpers = {"expert": ExpertIntervention(name="expert", cost=4), "cheap": ExpertIntervention(name="cheap", cost=1)}
    order = iter(["cheap", None, "expert", "cheap"])
    ep = run_helped_episode(env, ParityAgent(), helpers, "pnp-0000", lambda s, step: next(order, None))
    assert [t.actor for t in ep.transitions] == ["cheap", "agent", "expert", "cheap"]
    assert [t.helped for t in ep.transitions] == [True, False, True, True]
    assert ep.success and ep.interventions == 3 and ep.cost == 6.0
    # "yes" without whom is the decider's mistake: the episode ends on it, saying so
    bad = run_helped_episode(env, ParityAgent(), helpers, "pnp-0001", lambda s, step: True)
    assert not bad.success and bad.error.startswith(HelpChoiceError.__name__) and "several interventions" in bad.error


def test_the_helper_asks_the_best_affordable_actor_over_its_threshold() -> None:
    from agentcritic.helper.helper_model import Helper

    class Scores:  # P(ask) read from the helper text's "Ask:" line
        kind = "helper"

        def score(self, texts, batch_size=32):
            return [{"expert": 0.9, "cheap": 0.6}[t.rsplit("Ask: ", 1)[1]] for t in texts]

    helper = Helper(Scores(), threshold=0.5, max_budget=5, costs={"expert": 4, "cheap": 1})
    assert helper.choose("s", 0, 5) == "expert"
    assert helper.choose("s", 0, 2) == "cheap"  # the expert does not fit
    assert helper.offering(["cheap"]).choose("s", 0, 5) == "cheap"
    assert Helper(Scores(), threshold=0.7, costs={"expert": 4, "cheap": 1}).choose("s", 0, 3) is None


# ----------------------------------------------------------------------------------- eval-helper and report
@pytest.fixture(scope="module")
def two_kinds():
    """Household episodes helped at the first k steps by the expert ('expert', cost 4) or a random
    actor ('cheap', cost 1): only the expert rescues the odd tasks."""
    env = envs.make("household")
    episodes = []
    for task in TASKS:
        for k in range(7):
            for who in ("expert", "cheap"):
                helpers = parts()
                ep = run_helped_episode(env, ParityAgent(), helpers, task,
                                        lambda s, step, k=k, who=who: who if step < k else None)
                episodes.append({"transitions": ep.transitions, "success": ep.success})
    table = TabularModel.from_episodes(episodes, prm=constant_prm)
    return env, table


def parts():
    return {"expert": ExpertIntervention(name="expert", cost=4),
            "cheap": ModelIntervention(RandomAgent(seed=3), name="cheap", cost=1)}


def test_eval_helper_plays_each_kind_alone_and_the_mix_and_the_report_plots_cost(two_kinds, tmp_path: Path) -> None:
    from agentcritic.report.parts import Stage
    from agentcritic.report.plots import write_success_vs_cost
    from agentcritic.report.selfreg import eval_section
    from agentcritic.stage_results import EvalHelperResult

    env, table = two_kinds
    assert table.actors == ["cheap", "expert"]
    costs = {"expert": 4.0, "cheap": 1.0}
    factory = DeciderFactory(table, prm=constant_prm, costs=costs)
    methods = expand_methods(["never", "always", "dp"], table.actors)
    assert methods == ["never", "always@cheap", "always@expert", "dp", "dp@cheap", "dp@expert"]
    budgets = [0.0, 4.0, INF]
    rows = run_method_episodes(env, lambda seed: ParityAgent(), parts(), TASKS, methods, budgets, factory,
                               split="train", progress=False)
    for r in rows:
        cap = INF if r["budget"] == "inf" else int(r["budget"])
        assert r["cost"] <= cap, r
        assert r["cost"] == sum(costs[a] * n for a, n in r["requests"].items())
        only = r["method"].partition("@")[2]
        if only:
            assert set(r["actors"]) <= {"agent", only}, r
    summary = {(r["method"], r["budget"]): r for r in summarise_rows(rows, budgets)}
    # the expert rescues every task; the DP spends it on the odd ones only, 4 a request
    assert summary[("dp@expert", "inf")]["success_rate"] == 1.0
    assert summary[("dp@cheap", "inf")]["success_rate"] == 0.5  # random help rescues nobody here
    assert summary[("dp", "inf")]["success_rate"] == 1.0
    assert summary[("dp", "inf")]["mean_cost"] <= summary[("always@expert", "inf")]["mean_cost"]
    for row in summary.values():
        assert row["tasks"] == len(TASKS) and len(row["success_interval"]) == 2
    png = write_success_vs_cost(list(summary.values()), tmp_path / "cost.png")
    assert png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = EvalHelperResult.from_summary({"env": "household", "tasks": len(TASKS), "methods": methods,
                                            "budgets": ["0", "4", "inf"], "results": list(summary.values())})
    html = eval_section(Stage("e", "eval-helper", tmp_path, result))
    assert 'alt="success vs cost"' in html and "dp@expert" in html


@pytest.mark.slow
def test_cli_two_interventions_from_a_config_file_end_to_end(tmp_path: Path) -> None:
    """collect ([[interventions]] in --config) → train-prm → train-helper → eval-helper: the helper
    learns whom to ask, eval-helper plays each kind alone and the mix, and plots success vs cost."""
    import json

    from typer.testing import CliRunner

    from agentcritic.cli import app
    from agentcritic.helper.helper_model import load_helper
    from agentcritic.rm.backbone import make_tiny_backbone

    tiny = str(make_tiny_backbone(tmp_path / "tiny", "bert"))
    (tmp_path / "collect.toml").write_text(
        'env = "household"\npolicy = "random"\nlimit = 4\nn = 1\np_grid = [0.0, 0.5, 1.0]\n'
        '[[interventions]]\nkind = "expert"\ncost = 4\n'
        '[[interventions]]\nkind = "model"\nname = "cheap"\npolicy = "random"\ncost = 1\n')
    run = CliRunner()
    steps = [
        ["collect", "--config", str(tmp_path / "collect.toml"), "--out", str(tmp_path / "c")],
        ["train-prm", "--data", str(tmp_path / "c"), "--out", str(tmp_path / "p"), "--backbone", tiny,
         "--set", "max_length=64", "--set", "training.progress=false"],
        ["train-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"), "--out", str(tmp_path / "h"),
         "--backbone", tiny, "--max-steps", "2", "--budget", "4", "--set", "helper.max_length=64"],
        ["eval-helper", "--data", str(tmp_path / "c"), "--prm", str(tmp_path / "p"), "--helper", str(tmp_path / "h"),
         "--methods", "never,always,dp,helper", "--budgets", "0,4,inf", "--limit", "1", "--out", str(tmp_path / "e")],
    ]
    for args in steps:
        r = run.invoke(app, args)
        assert r.exit_code == 0, f"{args[0]}: {r.output}"
    helper = load_helper(tmp_path / "h")
    assert helper.costs == {"expert": 4.0, "cheap": 1.0} and helper.actors == ["cheap", "expert"]
    labels = [json.loads(line) for line in (tmp_path / "h" / "labels.jsonl").read_text().splitlines()]
    assert {tuple(x["offered"]) for x in labels} == {("cheap", "expert"), ("cheap",), ("expert",)}
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert res["costs"] == {"expert": 4.0, "cheap": 1.0}
    methods = {"never", "always@cheap", "always@expert", "dp", "dp@cheap", "dp@expert",
               "helper", "helper@cheap", "helper@expert"}
    assert set(res["methods"]) == methods and {row["method"] for row in res["results"]} == methods
    for row in res["results"]:
        assert row["budget"] == "inf" or row["mean_cost"] <= int(row["budget"])
    rows = {(row["method"], row["budget"]): row for row in res["results"]}
    assert rows[("always@expert", "inf")]["success_rate"] == 1.0
    assert rows[("always@expert", "4")]["max_interventions"] == 1  # one expert request fits in 4
    assert (tmp_path / "e" / "success_vs_cost.png").stat().st_size > 0


def test_the_table_shows_cost_and_requests_per_kind_when_several_kinds_ran() -> None:
    from agentcritic.helper.evaluate_helper import format_table

    rows = [{"method": "dp", "budget": "4", "task_id": "a", "success": True, "interventions": 2, "cost": 5.0,
             "steps": 3, "requests": {"expert": 1, "cheap": 1}},
            {"method": "dp@cheap", "budget": "4", "task_id": "a", "success": False, "interventions": 3, "cost": 3.0,
             "steps": 3, "requests": {"expert": 0, "cheap": 3}}]
    summary = summarise_rows(rows, [4.0])
    assert summary[0]["mean_requests"] == {"expert": 1.0, "cheap": 1.0} and summary[0]["mean_cost"] == 5.0
    lines = format_table(summary).splitlines()
    assert lines[0].split()[-2:] == ["mean", "cost"] and lines[2].split()[-1] == "3.00"


def test_collect_help_shows_the_interventions_table_header():
    """The help names the TOML header a user must type; the help's markup must not eat its brackets."""
    from typer.testing import CliRunner

    from agentcritic.cli import app

    r = CliRunner().invoke(app, ["collect", "--help"], env={"COLUMNS": "160"})
    assert r.exit_code == 0 and "[[interventions]] tables" in r.output and "as [] tables" not in r.output
