"""TRL exports hold exactly the text our reward models read."""

from __future__ import annotations

import json

import pytest

from agentcritic import envs
from agentcritic.agents import ExpertAgent, rollout
from agentcritic.export import (
    ExportError,
    export_run,
    preference_rows,
    read_parquet,
    stepwise_rows,
    write_parquet,
)
from agentcritic.rendering import render
from agentcritic.types import Preference, Step, Trajectory


def _t(actions, success):
    return Trajectory("shop", "t1", "buy red shoes", [Step(a, f"obs after {a}") for a in actions],
                      success, 1.0 if success else 0.2, {"first_observation": "search page"})


def test_preference_rows_are_trl_preference_format_and_parquet_round_trips(tmp_path) -> None:
    prefs = [Preference("buy red shoes", _t(["search[red shoes]", "click[b01]"], True),
                        _t(["search[red shoes]", "click[b02]"], False), "edit:product")]
    rows = preference_rows(prefs)
    assert set(rows[0]) == {"chosen", "rejected", "source"}  # TRL's implicit-prompt preference form
    assert rows[0]["chosen"] == ("Instruction: buy red shoes\nObservation: search page\nAction: search[red shoes]\n"
                                 "Observation: obs after search[red shoes]\nAction: click[b01]\n"
                                 "Observation: obs after click[b01]")
    assert rows[0]["rejected"] == render("buy red shoes", prefs[0].rejected)
    assert rows[0]["source"] == "edit:product"
    path = write_parquet(rows, tmp_path / "prefs.parquet")
    assert read_parquet(path) == rows


def test_stepwise_rows_label_every_step_with_the_outcome() -> None:
    rows = stepwise_rows([_t(["a", "b", "c"], True), _t(["x"], False)])
    assert rows[0]["labels"] == [True, True, True] and len(rows[0]["completions"]) == 3
    assert rows[1]["labels"] == [False]
    assert rows[0]["prompt"] == "Instruction: buy red shoes\nObservation: search page\n"
    t = _t(["a", "b", "c"], True)
    assert rows[0]["prompt"] + "\n".join(rows[0]["completions"]) == render(t.instruction, t)


def _game24_pair() -> Preference:
    """A solved game24 episode (its last observation is the env's "Correct" verdict) against a wrong answer."""
    env = envs.make("game24")
    won = rollout(env, ExpertAgent(), "900")
    assert won.success and won.steps[-1].observation.startswith("Correct:")
    lost = Trajectory("game24", "900", won.instruction, [Step("Answer: 4 * 6 = 24", "Wrong answer: it uses 4 6")],
                      False, 0.0, dict(won.meta))
    return Preference(won.instruction, won, lost, "test")


def test_exports_hide_game24s_verdict_as_the_reward_model_does() -> None:
    pair = _game24_pair()
    row = preference_rows([pair])[0]
    assert "Correct" not in row["chosen"] and "Wrong" not in row["rejected"]
    assert row["chosen"].endswith("Observation: Answer submitted.")
    step_row = stepwise_rows([pair.chosen])[0]
    assert "Correct" not in step_row["completions"][-1]


def test_an_exported_preference_row_is_exactly_what_the_reward_model_reads(tiny_bert, one_torch_thread,
                                                                            fed_texts) -> None:
    pytest.importorskip("torch")
    from agentcritic.rm import RewardModel

    rm = RewardModel(tiny_bert, max_length=512, seed=0)
    shop_pair = Preference("buy red shoes", _t(["search[red shoes]", "click[b01]"], True),
                           _t(["search[red shoes]", "click[b02]"], False), "edit:product")
    pairs = [_game24_pair(), shop_pair]
    read = fed_texts(rm, lambda: rm.score([(p.intent, side) for p in pairs for side in (p.chosen, p.rejected)]))
    rows = preference_rows(pairs)
    assert read == [text for row in rows for text in (row["chosen"], row["rejected"])]


# ----------------------------------------------------------------------------------- agentcritic export
def _shop_pairs(n: int) -> list[Preference]:
    out = []
    for k in range(n):
        good, bad = _t(["search[red shoes]", f"click[b{k:02d}]"], True), _t(["search[red shoes]"], False)
        good.task_id = bad.task_id = f"t{k}"
        out.append(Preference(f"buy red shoes #{k}", good, bad, "truncate" if k % 2 else "edit:product"))
    return out


def _write_jsonl(path, records, wrap: bool = False):
    lines = [json.dumps({"key": f"k{i}", "record": r} if wrap else r) for i, r in enumerate(records)]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _cli(*args: str):
    from typer.testing import CliRunner

    from agentcritic.cli import app

    return CliRunner().invoke(app, list(args))


def test_export_of_a_synthesize_folder_is_the_reward_models_text_and_loads_with_datasets(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    run = tmp_path / "synth"
    run.mkdir()
    pairs = _shop_pairs(6)
    _write_jsonl(run / "preferences.jsonl", [p.to_dict() for p in pairs])
    res = _cli("export", str(run), "--format", "parquet", "--out", str(tmp_path / "prefs.parquet"))
    assert res.exit_code == 0, res.output
    assert "6 preference rows" in res.output and str(tmp_path / "prefs.parquet") in res.output
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "prefs.parquet"), split="train")
    assert ds.column_names == ["chosen", "rejected", "source"]
    assert list(ds) == preference_rows(pairs)
    assert ds[0]["chosen"] == render(pairs[0].intent, pairs[0].chosen)
    # trl-preference: JSON lines beside the run by default, the same rows
    res = _cli("export", str(run), "--format", "trl-preference")
    assert res.exit_code == 0, res.output
    lines = (run / "export-trl-preference.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == preference_rows(pairs)


def test_export_of_a_train_rm_folder_marks_the_held_out_pairs(tmp_path) -> None:
    from agentcritic.rm.stages import split_preferences

    pairs = _shop_pairs(10)
    data = _write_jsonl(tmp_path / "preferences.jsonl", [p.to_dict() for p in pairs])
    train, held = split_preferences(pairs, 0.3, seed=0)
    run = tmp_path / "rm"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"data": [str(data)], "eval_data": [], "n_train": len(train)}))
    _write_jsonl(run / "heldout_preferences.jsonl", [p.to_dict() for p in held])
    result = export_run(run, "trl-preference", tmp_path / "rm.parquet")
    rows = read_parquet(result.path)
    assert result.splits == {"train": len(train), "test": len(held)} and len(held) == 3
    assert [r for r in rows if r["split"] == "test"] == [{**r, "split": "test"} for r in preference_rows(held)]
    assert [r for r in rows if r["split"] == "train"] == [{**r, "split": "train"} for r in preference_rows(train)]


def test_stepwise_export_reads_collected_episodes_and_rollouts(tmp_path) -> None:
    trajs = [_t(["a", "b"], True), _t(["x"], False)]
    collect = tmp_path / "collect"
    collect.mkdir()
    _write_jsonl(collect / "episodes.jsonl",
                 [{"task_id": t.task_id, "transitions": [], "success": t.success, "trajectory": t.to_dict()}
                  for t in trajs], wrap=True)
    result = export_run(collect, "trl-stepwise")
    assert result.path == collect / "export-trl-stepwise.jsonl" and result.kind == "stepwise"
    assert [json.loads(x) for x in result.path.read_text().splitlines()] == stepwise_rows(trajs)
    rollouts = _write_jsonl(tmp_path / "rollouts.jsonl", [t.to_dict() for t in trajs], wrap=True)
    with open(rollouts, "a") as f:  # a retry row (a failed attempt) is evidence, not data
        f.write(json.dumps({"key": "k9", "record": _t(["z"], False).to_dict(), "retry": True}) + "\n")
    result = export_run(rollouts, "parquet")
    assert result.path == tmp_path / "rollouts.parquet"
    assert read_parquet(result.path) == stepwise_rows(trajs)


def test_bad_exports_are_one_paragraph_and_exit_2(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "roll").mkdir()
    _write_jsonl(tmp_path / "roll" / "rollouts.jsonl", [_t(["a"], True).to_dict()], wrap=True)
    prefs = _write_jsonl(tmp_path / "p.jsonl", [p.to_dict() for p in _shop_pairs(2)])
    cases = [
        (("export", str(prefs), "--format", "csv"), "unknown export format 'csv'"),
        (("export", str(tmp_path / "empty")), "nothing to export here"),
        (("export", str(tmp_path / "nope")), "no such file or folder"),
        (("export", str(prefs), "--format", "trl-stepwise"), "export them with --format trl-preference"),
        (("export", str(tmp_path / "roll")), "holds trajectories, not preference pairs"),
    ]
    for args, message in cases:
        res = _cli(*args)
        assert res.exit_code == 2, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert "Traceback" not in res.output
        assert res.stderr.startswith("error: ") and message in res.stderr and "\n\n" not in res.stderr.strip()
    with pytest.raises(ExportError, match=r"p2.jsonl:2: not a preference pair"):
        export_run(_write_jsonl(tmp_path / "p2.jsonl", [_shop_pairs(1)[0].to_dict(), _t(["a"], True).to_dict()]),
                   "trl-preference")


def test_trls_reward_trainer_trains_a_step_on_the_exported_rows(tmp_path, tiny_bert, one_torch_thread) -> None:
    pytest.importorskip("torch")
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = tmp_path / "synth"
    run.mkdir()
    _write_jsonl(run / "preferences.jsonl", [p.to_dict() for p in _shop_pairs(8)], wrap=True)
    path = export_run(run, "parquet").path
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = trl.RewardConfig(output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=4,
                            learning_rate=1e-2, logging_steps=1, report_to="none", save_strategy="no",
                            bf16=False, use_cpu=True, eos_token=tokenizer.sep_token, max_length=512)
    trainer = trl.RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 1 and losses[0] > 0
    changed = [k for k, v in model.named_parameters() if not torch.equal(before[k], v.detach().cpu())]
    assert any("classifier" in k for k in changed) and len(changed) > len(before) // 2
