"""Evaluation: jobs, records, resume after a kill, and the paper's table layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from agentcritic.config import ConfigError, validate
from agentcritic.evaluate import EvalConfig, EvalJob, load_records, make_record, run_evaluation
from agentcritic.planning.accounting import Cost
from agentcritic.planning.base import PlanResult
from agentcritic.intervals import bootstrap_mean, wilson
from agentcritic.report.tables import INTERVAL_NOTE, cells, results_table, to_markdown
from agentcritic.types import Trajectory


def tiny_config(**kw) -> EvalConfig:
    data = {
        "envs": ["game24"], "policy": "random", "limit": 3, "samples": 2,
        "methods": [{"method": "best_of_n", "label": "One", "params": {"n": 1}},
                    {"method": "best_of_n", "label": "BestOf4", "params": {"n": 4}}],
        "target": {"kind": "env"},
    }
    data.update(kw)
    return validate(EvalConfig, data)


def strip_times(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        r = json.loads(json.dumps(r))
        r["cost"].pop("seconds")
        out.append(r)
    return sorted(out, key=lambda r: (r["env"], r["method"], r["task_id"], r["seed"]))


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"field 'methods.0.method'.*unknown method 'beam'"):
        validate(EvalConfig, {"methods": [{"method": "beam"}]}, source="e.toml")
    with pytest.raises(ConfigError, match=r"need a target"):
        validate(EvalConfig, {"methods": [{"method": "mcts"}]})
    with pytest.raises(ConfigError, match=r"labels \['X'\] appear twice"):
        validate(EvalConfig, {"methods": [{"method": "greedy", "label": "X"}, {"method": "sampling", "label": "X"}]})
    with pytest.raises(ConfigError, match=r"field 'envs.0'.*unknown env 'chess'"):
        validate(EvalConfig, {"envs": ["chess"], "methods": [{"method": "greedy"}]})
    with pytest.raises(ConfigError, match=r"field 'target'.*needs rm ="):
        validate(EvalConfig, {"target": {"kind": "rm"}})
    with pytest.raises(ConfigError, match=r"field 'methods.0'.*mcts: unknown parameter\(s\) \['simulations'\]"):
        validate(EvalConfig, {"target": {"kind": "env"}, "methods": [{"method": "mcts", "params": {"simulations": 9}}]})
    # the default rows are the paper's five methods
    cfg = validate(EvalConfig, {"target": {"kind": "env"}})
    assert [m.row_label for m in cfg.methods] == ["Greedy", "Sampling", "ARMAP-R", "ARMAP-B", "ARMAP-M"]


def test_run_evaluation_writes_one_record_per_job_and_resumes(tmp_path) -> None:
    cfg = tiny_config()
    summary = run_evaluation(cfg, tmp_path / "ev", progress=False)
    assert summary["records"] == summary["jobs"] == 3 * 2 * 2 and summary["written"] == 12
    records = load_records(tmp_path / "ev" / "results.jsonl")
    keys = {(r["method"], r["task_id"], r["seed"]) for r in records}
    assert len(keys) == 12
    for r in records:
        assert r["env"] == "game24" and r["split"] == "test" and r["policy"] == "random"
        traj = Trajectory.from_dict(r["trajectory"])
        assert r["steps"] == len(traj.steps) > 0
        assert r["score"] == traj.score and r["success"] == float(traj.success)
        assert r["rm_score"] == traj.score  # the env target scores with the env's reward
        assert len(r["candidates"]) == (1 if r["method"] == "One" else 4)
        assert r["cost"]["env_steps"] == sum(c["steps"] for c in r["candidates"])
        assert r["cost"]["seconds"] > 0
    # Best of 4 by the true reward never scores below its first candidate.
    assert all(r["score"] >= r["candidates"][0]["score"] for r in records)
    again = run_evaluation(cfg, tmp_path / "ev", progress=False)
    assert again["written"] == 0 and again["resumed_from"] == 12
    assert load_records(tmp_path / "ev" / "results.jsonl") == records
    from agentcritic.pipeline import run_kind

    outcome = run_kind("evaluate", cfg, tmp_path / "ev", progress=False)  # the contract marks it done
    assert not outcome.skipped and outcome.summary["written"] == 0
    manifest = json.loads((tmp_path / "ev" / "manifest.json").read_text())
    assert manifest["stages"]["evaluate"]["done"] is True
    assert run_kind("evaluate", cfg, tmp_path / "ev", progress=False).skipped


def test_worker_pool_gives_the_same_records(tmp_path) -> None:
    one = run_evaluation(tiny_config(limit=2, samples=1), tmp_path / "w1", progress=False)
    two = run_evaluation(tiny_config(limit=2, samples=1, workers=2), tmp_path / "w2", progress=False)
    assert one["records"] == two["records"] == 4
    assert strip_times(load_records(tmp_path / "w1" / "results.jsonl")) == strip_times(
        load_records(tmp_path / "w2" / "results.jsonl"))


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_records(tmp_path) -> None:
    cfg = tmp_path / "eval.toml"
    # MCTS with 200 rollouts and Best-of-16 take tens of milliseconds a task: time to kill the run mid-way
    cfg.write_text(
        'envs = ["game24"]\npolicy = "random"\nsplit = "train"\nlimit = 40\ntarget = {kind = "env"}\n'
        'methods = [{method = "mcts", label = "A", params = {rollouts = 200}},\n'
        '           {method = "best_of_n", label = "B", params = {n = 16}}]\n'
    )
    cli = [sys.executable, "-m", "agentcritic.cli", "evaluate", "--config", str(cfg)]
    ref = subprocess.run([*cli, "--out", str(tmp_path / "ref")], capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    assert "| random | A |" in ref.stdout and "Game24 (train) success %" in ref.stdout
    expected = strip_times(load_records(tmp_path / "ref" / "results.jsonl"))
    assert len(expected) == 80

    out = tmp_path / "killed"
    proc = subprocess.Popen([*cli, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    shard = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (shard.exists() and shard.read_bytes().count(b"\n") >= 15):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = shard.read_bytes().count(b"\n")
    assert 15 <= partial < 80, "the run was not interrupted mid-way"
    with open(shard, "ab") as f:  # a record torn by the kill
        f.write(b'{"key": "game24|train|A|1|')
    res = subprocess.run([*cli, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"({80 - partial} new, {partial} resumed)" in res.stdout
    lines = [json.loads(line) for line in shard.read_text().splitlines()]
    assert len({row["key"] for row in lines}) == len(lines) == 80  # nothing twice, torn line gone
    assert strip_times([row["record"] for row in lines]) == expected


def _job(method: str) -> EvalJob:
    from agentcritic.specs import EnvSpec, PolicySpec

    return EvalJob(key="k", env=EnvSpec(name="shop"), split="test", task_id="7", seed=3, label="Sampling",
                   method=method, params={"n": 3}, target=None, policy=PolicySpec(name="smollm2"),
                   policy_label="smollm2 (choose)")


def _traj(score: float, success: bool, steps: int = 2) -> Trajectory:
    from agentcritic.types import Step

    return Trajectory(env="shop", task_id="7", instruction="buy", steps=[Step("a", "o")] * steps,
                      success=success, score=score)


def test_sampling_record_reports_the_mean_and_the_oracle_separately() -> None:
    samples = [_traj(0.2, False), _traj(1.0, True, 5), _traj(0.6, False)]
    result = PlanResult(samples[0], None, samples, Cost(llm_calls=9, prompt_tokens=100, completion_tokens=5))
    rec = make_record(_job("sampling"), result, elapsed=1.5)
    assert rec["score"] == pytest.approx(0.6) and rec["success"] == pytest.approx(1 / 3)
    assert rec["oracle_score"] == 1.0 and rec["oracle_success"] == 1.0
    assert rec["cost"]["seconds"] == 1.5 and rec["cost"]["llm_calls"] == 9
    assert [c["steps"] for c in rec["candidates"]] == [2, 5, 2]
    # any other method reports its chosen trajectory and has no oracle
    rec = make_record(_job("best_of_n"), PlanResult(samples[2], 0.9, samples, Cost(), {"target_scores": [0.1, 0.5, 0.9]}), 1.0)
    assert rec["score"] == 0.6 and rec["success"] == 0.0 and rec["oracle_score"] is None
    assert [c["rm_score"] for c in rec["candidates"]] == [0.1, 0.5, 0.9]


def test_shop_records_keep_the_price_paid_of_every_candidate() -> None:
    """So a custom target (RM - w * price) can re-rank stored Best-of-N samples without a rerun."""
    from agentcritic.types import Step

    def bought(price: float | None) -> Trajectory:
        info = {"page": "done", "price": price} if price is not None else {}
        return Trajectory(env="shop", task_id="7", instruction="buy", steps=[Step("click[Buy Now]", "o", info=info)],
                          success=False, score=0.5)

    samples = [bought(12.5), bought(None), bought(40.0)]
    rec = make_record(_job("best_of_n"), PlanResult(samples[2], 0.9, samples, Cost(), {"target_scores": [0.1, 0.5, 0.9]}), 1.0)
    assert [c["price"] for c in rec["candidates"]] == [12.5, 0.0, 40.0]
    assert rec["price"] == 40.0


def _rec(policy, method, env, split, score, success, calls=0, oracle=None, task="t", seed=0):
    return {"policy": policy, "method": method, "env": env, "split": split, "task_id": task, "seed": seed,
            "score": score, "success": success, "oracle_score": oracle, "oracle_success": None if oracle is None else 1.0,
            "cost": {"llm_calls": calls, "prompt_tokens": 10, "completion_tokens": 2, "rm_calls": 1,
                     "env_steps": 4, "seconds": 0.5},
            "steps": 3, "price": (10.0 if success else 15.0) if env == "shop" else None,
            "trajectory": {"score": score, "steps": []}}


def test_results_table_has_the_papers_layout() -> None:
    records = []
    # methods arrive in a scrambled order; rows must come out Sampling, Greedy, ARMAP-R, -B, -M
    for policy in ("smollm2 (choose)", "big (generate)"):
        for method, s in (("ARMAP-M", 0.9), ("Greedy", 0.3), ("ARMAP-B", 0.7), ("Sampling", 0.2), ("ARMAP-R", 0.5)):
            oracle = 0.95 if method == "Sampling" else None
            records += [
                _rec(policy, method, "shop", "test", s, 0.0, calls=10, oracle=oracle, task="s1"),
                _rec(policy, method, "shop", "test", s + 0.1, 1.0, calls=20, oracle=oracle, task="s2"),
                _rec(policy, method, "game24", "test", 0.0, 0.0, calls=30, task="g1"),
                _rec(policy, method, "game24", "test", 1.0, 1.0, calls=30, task="g2"),
                _rec(policy, method, "scienceworld", "test", s, 0.0),
                _rec(policy, method, "scienceworld", "dev", s / 2, 0.0),
                _rec(policy, method, "textworld", "test", s, 1.0),
            ]
    table = results_table(records)
    assert [c.label for c in table.columns] == [
        "Game24 success %", "Shop reward ×100", "Shop success %", "SciWorld seen ×100", "SciWorld unseen ×100",
        "TextWorld score ×100", "TextWorld success %",
    ]
    names = [(r.policy, r.method) for r in table.rows]
    block = ["Sampling", "Greedy", "ARMAP-R", "ARMAP-B", "ARMAP-M", "Sampling oracle (best of N by env reward)"]
    assert names == [("smollm2 (choose)", m) for m in block] + [("big (generate)", m) for m in block]
    mcts = table.rows[4]
    assert mcts.values["Shop reward ×100"] == pytest.approx(95.0)  # mean of 0.9 and 1.0, ×100
    assert mcts.values["Shop success %"] == pytest.approx(50.0)
    assert mcts.values["Game24 success %"] == pytest.approx(50.0)
    assert mcts.values["SciWorld seen ×100"] == pytest.approx(45.0)
    assert mcts.values["SciWorld unseen ×100"] == pytest.approx(90.0)
    assert mcts.tasks == 7
    # n counts tasks per cell; Wilson for success (1 of 2: 9.5–90.5), bootstrap for rewards (0.9 and 1.0)
    assert mcts.counts["Shop success %"] == 2 and mcts.counts["SciWorld seen ×100"] == 1
    assert mcts.intervals["Shop success %"] == pytest.approx((9.4531, 90.5469), abs=1e-3)
    assert mcts.intervals["Game24 success %"] == pytest.approx((9.4531, 90.5469), abs=1e-3)
    assert mcts.intervals["Shop reward ×100"] == pytest.approx((90.0, 100.0))
    assert mcts.intervals["SciWorld seen ×100"] == pytest.approx((45.0, 45.0))  # one task: no spread
    assert mcts.intervals["TextWorld success %"] == pytest.approx((20.6549, 100.0), abs=1e-3)  # 1 of 1
    assert mcts.cost["llm_calls"] == pytest.approx((10 + 20 + 30 + 30) / 7)
    assert mcts.cost["tokens"] == 12 and mcts.cost["env_steps"] == 4 and mcts.cost["seconds"] == 0.5
    oracle = table.rows[5]
    assert oracle.oracle and oracle.values["Shop reward ×100"] == pytest.approx(95.0)
    assert oracle.values["Game24 success %"] is None  # no oracle numbers recorded for game24

    md = to_markdown(table).splitlines()
    assert md[0].startswith("| policy | method | Game24 success % | Shop reward ×100 |")
    assert md[0].endswith("| tasks | steps | price paid | LLM calls/task | tokens/task | RM calls/task | env steps/task | s/task |")
    assert md[6].startswith(
        "| smollm2 (choose) | ARMAP-M | 50.0 (9–91) n=2 | 95.0 (90–100) n=2 | 50.0 (9–91) n=2 | 45.0 (45–45) n=1 "
        "| 90.0 (90–90) n=1 | 90.0 (90–90) n=1 | 100.0 (21–100) n=1 | 7 | 3.0 | 12.50 | 12.9 |")
    assert mcts.steps == 3.0 and mcts.price == 12.5  # mean price over the shop records only
    assert md[7].startswith("| smollm2 (choose) | Sampling oracle (best of N by env reward) | – | 95.0 (95–95) n=2 |")
    assert md[-2:] == ["", INTERVAL_NOTE]


def test_a_cell_counts_tasks_not_seeds_and_its_interval_is_over_tasks() -> None:
    """Three tasks, two seeds each: a task's seeds are averaged, so n = 3 and a split task counts ½."""
    records = [
        _rec("p", "Greedy", "shop", "test", score, success, task=task, seed=seed)
        for task, seed, score, success in [("a", 0, 1.0, 1.0), ("a", 1, 0.8, 1.0), ("b", 0, 0.2, 0.0),
                                           ("b", 1, 0.6, 1.0), ("c", 0, 0.0, 0.0), ("c", 1, 0.0, 0.0)]
    ]
    (row,) = results_table(records).rows
    assert row.counts == {"Shop reward ×100": 3, "Shop success %": 3}
    assert row.values["Shop success %"] == pytest.approx(50.0)  # tasks 1, ½, 0
    assert row.intervals["Shop success %"] == pytest.approx([100 * x for x in wilson(1.5, 3)])
    assert row.values["Shop reward ×100"] == pytest.approx(100 * (0.9 + 0.4 + 0.0) / 3)
    assert row.intervals["Shop reward ×100"] == pytest.approx([100 * x for x in bootstrap_mean([0.9, 0.4, 0.0])])
    assert row.intervals["Shop reward ×100"][0] < row.values["Shop reward ×100"] < row.intervals["Shop reward ×100"][1]
    (text,) = cells(results_table(records))
    assert text[2:4] == ["43.3 (0–90) n=3", "50.0 (13–87) n=3"]


def test_a_split_other_than_test_is_named_in_the_column() -> None:
    table = results_table([_rec("p", "Greedy", "game24", "dev", 1.0, 1.0), _rec("p", "Greedy", "game24", "test", 0.0, 0.0)])
    assert [c.label for c in table.columns] == ["Game24 (dev) success %", "Game24 (test) success %"]
    assert table.rows[0].values == {"Game24 (dev) success %": 100.0, "Game24 (test) success %": 0.0}


def test_reflexion_threshold_is_calibrated_on_dev_data_and_kept_for_resume(tmp_path) -> None:
    # env reward minus a length term: no built-in success threshold, so it must be calibrated
    target = {"kind": "env", "terms": {"length": 0.01}}
    cfg = tiny_config(limit=2, samples=1, target=target, calibration={"limit": 4},
                      methods=[{"method": "reflexion", "params": {"max_trials": 2}}, {"method": "greedy"}])
    summary = run_evaluation(cfg, tmp_path / "ev", progress=False)
    calibration = json.loads((tmp_path / "ev" / "calibration.json").read_text())
    (entry,) = calibration.values()
    # expert successes score 1 - 4 * 0.01 = 0.96 and random failures at most 0.96 - 1: the cut lies between
    assert entry["successes"] == 4 and entry["failures"] == 4 and entry["split"] == "dev"
    assert -0.04 < entry["threshold"] < 0.96
    records = load_records(tmp_path / "ev" / "results.jsonl")
    refl = [r for r in records if r["method"] == "ARMAP-R"]
    assert len(refl) == 2 and all(r["params"]["threshold"] == entry["threshold"] for r in refl)
    assert all(r["meta"]["threshold"] == entry["threshold"] for r in refl)
    assert all(r["meta"]["trials"] == 2 for r in refl)  # random attempts never clear the cut
    assert summary["records"] == 4
    # the env's own reward has a success threshold: nothing to calibrate
    cfg = tiny_config(limit=1, samples=1, methods=[{"method": "reflexion", "params": {"max_trials": 1}}])
    run_evaluation(cfg, tmp_path / "ev2", progress=False)
    assert json.loads((tmp_path / "ev2" / "calibration.json").read_text()) == {}


@pytest.mark.parametrize("kept", ['{"game24|another target": {"threshold": 0.5}}', "{not json"])
def test_a_calibration_file_lacking_the_target_is_completed_not_trusted(tmp_path, kept) -> None:
    """calibration.json is a cache: a foreign or torn one is calibrated again, never a crash in a worker."""
    target = {"kind": "env", "terms": {"length": 0.01}}
    cfg = tiny_config(limit=1, samples=1, target=target, calibration={"limit": 4},
                      methods=[{"method": "reflexion", "params": {"max_trials": 2}}])
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "calibration.json").write_text(kept)
    run_evaluation(cfg, tmp_path / "ev", progress=False)
    calibration = json.loads((tmp_path / "ev" / "calibration.json").read_text())
    fresh = [v for k, v in calibration.items() if k != "game24|another target"]
    assert len(fresh) == 1 and fresh[0]["successes"] == 4
    (rec,) = load_records(tmp_path / "ev" / "results.jsonl")
    assert rec["params"]["threshold"] == fresh[0]["threshold"]


def test_a_run_resumes_with_other_workers(tmp_path) -> None:
    run_evaluation(tiny_config(limit=1, samples=1), tmp_path / "ev", progress=False)
    resumed = run_evaluation(tiny_config(limit=1, samples=1, workers=2), tmp_path / "ev", progress=False)
    assert resumed["written"] == 0 and resumed["resumed_from"] == 2


def test_cli_flags_build_the_config_and_a_missing_rm_is_a_clear_error(tmp_path) -> None:
    cli = [sys.executable, "-m", "agentcritic.cli", "evaluate", "--env", "game24", "--limit", "1", "--policy", "random"]
    res = subprocess.run([*cli, "--method", "greedy", "--method", "best_of_n", "--env-target", "--set",
                          'methods=[{method = "greedy"}, {method = "best_of_n", params = {n = 2}}]',
                          "--out", str(tmp_path / "ok")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    records = {r["method"]: r for r in load_records(tmp_path / "ok" / "results.jsonl")}
    assert set(records) == {"Greedy", "ARMAP-B"} and len(records["ARMAP-B"]["candidates"]) == 2
    assert "| random | Greedy |" in res.stdout and "| random | ARMAP-B |" in res.stdout
    res = subprocess.run([*cli, "--method", "mcts", "--rm", str(tmp_path / "no-rm"), "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "target.rm" in res.stderr and "does not exist" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "bad" / "config.toml").exists()


@pytest.mark.slow
def test_ray_executor_gives_the_records_of_the_pool(tmp_path) -> None:
    pytest.importorskip("ray")
    data = {"envs": ["game24"], "policy": "random", "limit": 3, "target": {"kind": "env"},
            "methods": [{"method": "greedy"}, {"method": "best_of_n", "params": {"n": 2}}]}
    run_evaluation(validate(EvalConfig, data), tmp_path / "pool", progress=False)
    summary = run_evaluation(validate(EvalConfig, {**data, "executor": "ray", "workers": 2}), tmp_path / "ray",
                             progress=False)
    assert summary["written"] == 6
    assert strip_times(load_records(tmp_path / "ray" / "results.jsonl")) == strip_times(
        load_records(tmp_path / "pool" / "results.jsonl"))


class _CountingLM:
    """Tests only: the scripted LM plus a clear_cache counter (the HF backend's cache API)."""

    def __init__(self) -> None:
        from agentcritic import llm

        self.inner = llm.load("scripted", scores=lambda messages, candidate: -len(candidate))
        self.cleared = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def clear_cache(self, kv: bool = True) -> None:
        self.cleared += 1


@pytest.mark.parametrize("share", [False, True])
def test_each_job_starts_with_an_empty_lm_cache_unless_shared(tmp_path, monkeypatch, share) -> None:
    import agentcritic.agents as agents

    lm = _CountingLM()
    monkeypatch.setattr(agents, "load_lm", lambda backend, **kw: lm)
    cfg = tiny_config(policy="smollm2", limit=2, samples=1, few_shot=False, share_llm_cache=share,
                      methods=[{"method": "greedy"}, {"method": "best_of_n", "params": {"n": 2}}])
    summary = run_evaluation(cfg, tmp_path / "ev", progress=False)
    assert summary["records"] == 4
    assert lm.cleared == (0 if share else 4)
    records = load_records(tmp_path / "ev" / "results.jsonl")
    assert all(r["cost"]["llm_calls"] > 0 for r in records) and {r["policy"] for r in records} == {"smollm2 (choose)"}


def test_a_row_may_act_with_its_own_policy_a_uniform_prior(tmp_path) -> None:
    cfg = validate(EvalConfig, {
        "envs": ["game24"], "policy": "expert", "limit": 2, "target": {"kind": "env"},
        "methods": [{"method": "greedy"},
                    {"method": "mcts", "policy": "random", "params": {"rollouts": 12, "horizon": 4}}]})
    assert [m.row_label for m in cfg.methods] == ["Greedy", "ARMAP-M [random]"]
    run_evaluation(cfg, tmp_path, progress=False)
    rows = {(r["method"], r["task_id"]): r for r in load_records(tmp_path / "results.jsonl")}
    greedy = [r for (m, _), r in rows.items() if m == "Greedy"]
    uniform = [r for (m, _), r in rows.items() if m == "ARMAP-M [random]"]
    assert len(greedy) == len(uniform) == 2
    assert {r["policy"] for r in greedy} == {"expert"} and all(r["success"] == 1.0 for r in greedy)
    assert {r["policy"] for r in uniform} == {"random"}
    assert all(r["cost"]["rm_calls"] > 0 for r in uniform)  # the search ran, with the env's reward as target
