"""Typed stage results: one model per stage kind, written to ``result.json`` with the kind and read back
as that kind's model; a missing, unreadable or foreign file is a one-paragraph error naming it."""

from __future__ import annotations

import json
import math

import pytest

from agentcritic.errors import AgentCriticError
from agentcritic.stage_results import (
    KIND_RESULTS,
    RESULT_FILE,
    DPTrainRow,
    EvalHelperResult,
    EvaluateResult,
    ResultError,
    StageResult,
    SynthesizeResult,
    TrainPRMResult,
    TrainRMResult,
    kind_of,
    read_result,
    write_result,
)

KINDS = ["synthesize", "train-rm", "eval-rm", "evaluate", "report", "rollout", "collect", "train-prm",
         "train-helper", "eval-helper"]


def test_every_stage_kind_has_its_own_result_model() -> None:
    assert sorted(KIND_RESULTS) == sorted(KINDS)
    assert len(set(KIND_RESULTS.values())) == len(KINDS)
    assert all(issubclass(model, StageResult) and "errors" in model.model_fields for model in KIND_RESULTS.values())


@pytest.mark.parametrize("kind", KINDS)
def test_a_result_round_trips_through_result_json_as_its_kind(kind, tmp_path) -> None:
    result = KIND_RESULTS[kind](errors=2, made=["a.jsonl"])
    path = write_result(tmp_path, kind, result)
    assert path == tmp_path / RESULT_FILE
    data = json.loads(path.read_text())
    assert data["kind"] == kind and data["errors"] == 2 and data["made"] == ["a.jsonl"]
    back = read_result(tmp_path)
    assert type(back) is KIND_RESULTS[kind] and back == result and kind_of(back) == kind
    assert isinstance(back.headline(), str) and back.headline()


def test_nested_rows_and_numbers_json_lacks_survive(tmp_path) -> None:
    result = EvalHelperResult(env="household", split="test", tasks=2, budgets=["0", "inf"], methods=["dp"],
                              dp_train=[DPTrainRow(method="dp", budget="inf", episodes=2, success_rate=0.5,
                                                   mean_interventions=1.0, max_interventions=2,
                                                   predicted_success=math.nan)])
    write_result(tmp_path, "eval-helper", result)
    assert "NaN" not in (tmp_path / RESULT_FILE).read_text()  # strict JSON: NaN is written as null
    back = read_result(tmp_path)
    assert isinstance(back, EvalHelperResult) and back.dp_train[0].predicted_success is None
    assert back.dp_train[0].max_interventions == 2
    assert back.headline() == "1 methods × 2 budgets on 2 household tasks"


def test_a_summary_dict_maps_onto_the_kinds_fields() -> None:
    synth = SynthesizeResult.from_summary({"env": "game24", "pairs": 8, "candidates": 9, "errors": 1,
                                           "trajectories": {"explored": 12, "positives": 2},
                                           "verification": {"rate": 1.0}, "per_source": {"truncate": 8},
                                           "dropped": {"long": 1}})
    assert (synth.explored, synth.positives, synth.verification_rate, synth.errors) == (12, 2, 1.0, 1)
    prm = TrainPRMResult.from_summary({"sizes": {"train_examples": 16, "held_out_tasks": 1},
                                       "eval": {"auroc": 0.7, "brier": 0.2,
                                                "reliability": {"ece": 0.1, "bins": [{"mean_predicted": 0.4,
                                                                                      "observed": 0.5, "count": 3}]}}})
    assert (prm.train_examples, prm.auroc, prm.ece, prm.reliability[0].count) == (16, 0.7, 0.1, 3)
    rm = TrainRMResult.from_summary({"train": {"n_train": 40, "n_eval": 8, "steps": 5}, "eval": {"accuracy": 0.0},
                                     "pending": 3})
    assert (rm.n_train, rm.n_heldout, rm.heldout_accuracy, rm.pending) == (40, 8, 0.0, 3)  # 0.0 is a value
    evaluation = EvaluateResult.from_summary({"records": 12, "jobs": 12, "written": 4, "resumed_from": 8})
    assert (evaluation.resumed, evaluation.headline()) == (8, "12 evaluation records")


def test_a_result_of_another_kind_is_refused_when_written(tmp_path) -> None:
    with pytest.raises(TypeError, match="a 'evaluate' stage returns EvaluateResult, not SynthesizeResult"):
        write_result(tmp_path, "evaluate", SynthesizeResult(env="game24"))
    with pytest.raises(ResultError, match="unknown stage kind 'dragon'"):
        write_result(tmp_path, "dragon", StageResult())
    assert not (tmp_path / RESULT_FILE).exists()


def test_missing_unreadable_and_foreign_results_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ResultError, match=f"{tmp_path / RESULT_FILE}: no stage result here"):
        read_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text("{not json")
    with pytest.raises(ResultError, match="not a readable JSON file"):
        read_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text(json.dumps({"records": 3}))
    with pytest.raises(ResultError, match=r"not a stage result \(kind None"):
        read_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text(json.dumps({"kind": "evaluate", "records": "many", "colour": "red"}))
    with pytest.raises(ResultError, match=r"not a valid 'evaluate' result \(.*records.*colour") as info:
        read_result(tmp_path)
    assert isinstance(info.value, AgentCriticError)  # the CLI prints it as one paragraph, exit code 2
