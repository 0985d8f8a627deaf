"""``agentcritic run CONFIG.toml``: stages in sub-folders, resume by manifest, clear config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentcritic.config import ConfigError
from agentcritic.pipeline import (
    STAGE_KINDS,
    PipelineError,
    load_pipeline,
    parse_pipeline,
    register_stage,
    resolve_paths,
    run_pipeline,
)

TESTS = Path(__file__).parent
CLI = [sys.executable, "-m", "agentcritic.cli"]

TINY = """\
out = "{out}"

[[stages]]
kind = "evaluate"
name = "eval-game24"
envs = ["game24"]
policy = "random"
limit = 3
target = {{ kind = "env" }}
methods = [
  {{ method = "greedy", label = "Greedy" }},
  {{ method = "best_of_n", label = "ARMAP-B", params = {{ n = 3 }} }},
]

[[stages]]
kind = "evaluate"
name = "eval-shop"
envs = ["shop"]
policy = "random"
limit = 2
target = {{ kind = "env" }}
methods = [{{ method = "greedy", label = "Greedy" }}]

[[stages]]
kind = "report"
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_run_executes_every_stage_into_its_folder_and_skips_done_ones(tmp_path) -> None:
    out = tmp_path / "run"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(out=out))
    res = cli("run", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "[1/3] eval-game24 (evaluate)" in res.stdout and f"Report: {out / 'report.html'}" in res.stdout
    manifest = json.loads((out / "manifest.json").read_text())["stages"]
    assert set(manifest) == {"eval-game24", "eval-shop", "report"}
    assert all(v["done"] for v in manifest.values())
    assert manifest["eval-game24"]["records"] == 6 and manifest["eval-shop"]["records"] == 2
    assert len((out / "eval-game24" / "results.jsonl").read_text().splitlines()) == 6
    html = (out / "report.html").read_text()
    assert "Game24 success %" in html and "Shop reward ×100" in html  # the report sees both stages

    again = cli("run", str(cfg))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done before, skipped") == 3

    # an interrupted stage (not marked done) runs again and resumes inside: nothing is written twice
    data = json.loads((out / "manifest.json").read_text())
    del data["stages"]["eval-shop"], data["stages"]["report"]
    (out / "manifest.json").write_text(json.dumps(data))
    for name, kind in (("eval-shop", "evaluate"), ("report", "report")):
        stage = json.loads((out / name / "manifest.json").read_text())
        del stage["stages"][kind]
        (out / name / "manifest.json").write_text(json.dumps(stage))
    third = cli("run", str(cfg))
    assert third.returncode == 0 and third.stdout.count("done before, skipped") == 1
    assert len((out / "eval-shop" / "results.jsonl").read_text().splitlines()) == 2


def test_a_changed_config_is_refused_for_an_existing_run(tmp_path) -> None:
    out = tmp_path / "run"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(out=out))
    assert cli("run", str(cfg), "--stage", "eval-shop").returncode == 0
    res = cli("run", str(cfg), "--set", "eval-shop.limit=1")
    assert res.returncode == 2 and "another config" in res.stderr and "Traceback" not in res.stderr


def test_stages_run_one_by_one_may_each_have_their_own_overrides(tmp_path) -> None:
    """Only the stages a call runs (or skips as done) must match their record."""
    out = tmp_path / "run"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(out=out))
    assert cli("run", str(cfg), "--stage", "eval-game24", "--set", "eval-game24.limit=1").returncode == 0
    res = cli("run", str(cfg), "--stage", "eval-shop", "--set", "eval-shop.limit=1")
    assert res.returncode == 0, res.stderr
    assert len((out / "eval-shop" / "results.jsonl").read_text().splitlines()) == 1
    # each stage keeps the settings it ran with
    import tomllib

    recorded = {name: tomllib.loads((out / name / "config.toml").read_text())["stage"]["settings"]
                for name in ("eval-game24", "eval-shop")}
    assert recorded["eval-game24"]["limit"] == 1 and recorded["eval-shop"]["limit"] == 1
    # a stage run again under other settings is refused, done or not, with or without --stage
    for args in (["--stage", "eval-game24"], ["--set", "eval-game24.limit=1"], []):
        res = cli("run", str(cfg), *args)
        assert res.returncode == 2 and "another config" in res.stderr, (args, res.stderr)
        assert "eval-game24" in res.stderr or "eval-shop" in res.stderr
    assert len((out / "eval-game24" / "results.jsonl").read_text().splitlines()) == 2  # nothing rerun


def test_unknown_stage_kind_names_the_kind_the_line_and_the_valid_kinds(tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[stages]]\nkind = "report"\n\n[[stages]]\nkind = "train-dragon"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:4: stages\[1\]: field 'kind': unknown stage kind 'train-dragon'"):
        load_pipeline(cfg)
    res = cli("run", str(cfg), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "'evaluate'" in res.stderr and "Traceback" not in res.stderr


def test_bad_stage_settings_name_stage_field_and_line(tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[[stages]]\nkind = "report"\n\n[[stages]]\nkind = "evaluate"\nname = "ev"\n'
        'envs = ["game24"]\nlimit = "ten"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_pipeline(cfg)
    assert "bad.toml:8 stages[1] (evaluate 'ev'): field 'limit'" in str(err.value)
    cfg.write_text('[[stages]]\nkind = "report"\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:3 stages\[0\] \(report 'report'\): field 'colour': Extra inputs"):
        load_pipeline(cfg)
    with pytest.raises(ConfigError, match="list the stages"):
        parse_pipeline({"out": "x"})
    with pytest.raises(ConfigError, match=r"stages \['report'\] appear twice"):
        parse_pipeline({"stages": [{"kind": "report"}, {"kind": "report"}]})
    with pytest.raises(ConfigError, match="not a folder name"):
        parse_pipeline({"stages": [{"kind": "report", "name": "../up"}]})
    with pytest.raises(ConfigError, match="no run folder"):
        run_pipeline(*parse_pipeline({"stages": [{"kind": "report"}]}))
    with pytest.raises(ConfigError, match=r"--stage \['rm'\]: no such stage; the stages are \['report'\]"):
        run_pipeline(*parse_pipeline({"stages": [{"kind": "report"}]}), out="x", only=["rm"])


def test_a_stage_whose_module_has_not_landed_fails_clearly_not_at_import(monkeypatch) -> None:
    monkeypatch.setitem(STAGE_KINDS, "later", STAGE_KINDS["report"])
    register_stage("later", "agentcritic.not_yet_here:LaterConfig", "agentcritic.not_yet_here:run")
    with pytest.raises(PipelineError, match=r"stage 'later' \(kind 'later'\) needs agentcritic.not_yet_here"):
        parse_pipeline({"stages": [{"kind": "later"}]})


def test_relative_paths_resolve_under_the_run_folder(tmp_path) -> None:
    _, (cfg,) = parse_pipeline({"stages": [{
        "kind": "evaluate", "target": {"rm": "rm"},
        "methods": [{"method": "greedy"}, {"method": "mcts", "target": {"rm": "/abs/rm"}}],
    }]})
    fixed = resolve_paths(cfg, STAGE_KINDS["evaluate"].paths, tmp_path)
    assert fixed.target.rm == str(tmp_path / "rm")
    assert fixed.methods[1].target.rm == "/abs/rm"  # absolute paths are left alone
    _, (cfg,) = parse_pipeline({"stages": [{"kind": "train-rm", "data": ["s1/preferences.jsonl", "s2/preferences.jsonl"]}]})
    fixed = resolve_paths(cfg, STAGE_KINDS["train-rm"].paths, tmp_path)
    assert fixed.data == [str(tmp_path / "s1/preferences.jsonl"), str(tmp_path / "s2/preferences.jsonl")]


def test_overrides_reach_one_stage_and_out(tmp_path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(TINY.format(out=tmp_path / "a"))
    pipeline, configs = load_pipeline(cfg, ["eval-shop.limit=1", f'out="{tmp_path / "b"}"'])
    assert pipeline.out == str(tmp_path / "b")
    assert configs[1].limit == 1 and configs[0].limit == 3
    with pytest.raises(ConfigError, match="STAGE one of"):
        load_pipeline(cfg, ["nosuch.limit=1"])


@pytest.mark.slow
def test_the_shipped_demo_runs_end_to_end_on_a_tiny_budget(tmp_path) -> None:
    """configs/demo.toml itself, shrunk by overrides: random explorer and policy, a tiny RM backbone."""
    from agentcritic.rm.backbone import make_tiny_backbone

    tiny = make_tiny_backbone(tmp_path / "tiny-bert", "bert")
    shrink = []
    for synth in ("synth-game24", "synth-shop"):
        shrink += [f"{synth}.explorer=\"random\"", f"{synth}.tasks=3", f"{synth}.llm_intents=false",
                   f'{synth}.negatives=["edit", "cross_policy", "truncate"]']
    shrink += [f'rm.backbone="{tiny}"', "rm.train={num_epochs = 1, batch_size = 8, eval_fraction = 0.2}",
               *[f"{ev}.{x}" for ev in ("evaluate-game24", "evaluate-shop")
                 for x in ('policy="random"', "limit=1", "calibration.limit=3")],
               'evaluate-game24.methods=[{method="greedy"}, {method="sampling", params={n=2}}, '
               '{method="reflexion", params={max_trials=2}}, {method="best_of_n", params={n=2}}, '
               '{method="mcts", params={rollouts=4}}]']
    shrink += ['collect-household.policy="random"', "collect-household.limit=3", "collect-household.p_grid=[0, 1]",
               f'prm.backbone="{tiny}"', "prm.max_length=64", "prm.training={num_epochs = 1, batch_size = 8}",
               f'helper.helper={{backbone = "{tiny}", max_steps = 2, batch_size = 8, max_length = 64, '
               "labels = {budget = 1}}", "eval-helper.limit=1", "eval-helper.budgets=[0, 1, inf]",
               "eval-helper.train_limit=1"]
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--workers", "1", *[x for item in shrink for x in ("--set", item)]]
    res = cli(*args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"Report: {out / 'report.html'}" in res.stdout
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert set(stages) == {"synth-game24", "synth-shop", "rm", "rm-eval", "evaluate-game24", "evaluate-shop",
                           "collect-household", "prm", "helper", "eval-helper", "report"}
    assert all(s["done"] for s in stages.values())
    assert (out / "rm" / "model").is_dir() and (out / "rm-eval" / "rm_eval.json").exists()
    records = [json.loads(line)["record"] for ev in ("evaluate-game24", "evaluate-shop")
               for line in (out / ev / "results.jsonl").read_text().splitlines()]
    assert {r["env"] for r in records if r["method"] == "ARMAP-M" and r["params"].get("rollouts") == 4} == {"game24"}
    assert sorted({(r["env"], r["method"]) for r in records}) == sorted(
        (env, m) for env in ("game24", "shop") for m in ("Greedy", "Sampling", "ARMAP-R", "ARMAP-B", "ARMAP-M"))
    assert all(r["rm_score"] is not None for r in records if r["method"].startswith("ARMAP"))
    html = (out / "report.html").read_text()
    for section in ("Results", "Reward-data synthesis", "Reward model accuracy", "When to ask for help",
                    "Example trajectories"):
        assert f"<h2>{section}</h2>" in html
    helping = json.loads((out / "eval-helper" / "results.json").read_text())
    assert helping["env"] == "household" and {r["method"] for r in helping["results"]} == {
        "never", "always", "random", "prm_threshold", "prm_gain", "dp", "helper"}
    assert 'alt="success vs interventions"' in html and 'id="helper-results"' in html
    again = cli(*args)
    assert again.returncode == 0 and again.stdout.count("done before, skipped") == 11


@pytest.mark.parametrize("name", sorted(p.name for p in (TESTS.parent / "src/agentcritic/configs").glob("*.toml")))
def test_every_shipped_config_validates(name) -> None:
    from agentcritic.demo import shipped_config

    pipeline, configs = load_pipeline(shipped_config(name))
    assert pipeline.out == f"runs/{name.removesuffix('.toml')}"
    assert len(configs) == len(pipeline.stages) >= 2 and pipeline.stages[-1].kind == "report"
    evaluations = [c for s, c in zip(pipeline.stages, configs) if s.kind == "evaluate"]
    assert all(c.methods for c in evaluations)
    assert evaluations or name == "armap-rm.toml"  # the reward-model-only run plans nothing


def test_the_demo_covers_the_five_methods_on_game24_and_shop_and_the_helper_on_household() -> None:
    from agentcritic.demo import shipped_config

    pipeline, configs = load_pipeline(shipped_config())
    kinds = [s.kind for s in pipeline.stages]
    assert kinds == ["synthesize", "synthesize", "train-rm", "eval-rm", "evaluate", "evaluate", "collect",
                     "train-prm", "train-helper", "eval-helper", "report"]
    collect, helping = configs[6], configs[9]
    assert collect.env == "household" and collect.policy == "smollm2" and collect.intervention.kind == "expert"
    assert helping.methods == ["never", "always", "random", "prm_threshold", "prm_gain", "dp", "helper"]
    evaluations = [c for s, c in zip(pipeline.stages, configs) if s.kind == "evaluate"]
    assert [e.envs for e in evaluations] == [["game24"], ["shop"]]
    for evaluate in evaluations:
        assert evaluate.policy == "smollm2" and evaluate.limit >= 10
        assert [m.row_label for m in evaluate.methods] == ["Greedy", "Sampling", "ARMAP-R", "ARMAP-B", "ARMAP-M"]
        assert evaluate.target.kind == "rm" and evaluate.target.rm == "rm"
    # game24's MCTS gets the budget that finds solutions; the shop's (long rollouts) a small one
    assert [e.methods[-1].params["rollouts"] for e in evaluations] == [100, 6]
