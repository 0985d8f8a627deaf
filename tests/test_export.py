from __future__ import annotations

from agentcritic.export import preference_rows, read_parquet, stepwise_rows, write_parquet
from agentcritic.types import Preference, Step, Trajectory


def _t(actions, success):
    return Trajectory("shop", "t1", "buy red shoes", [Step(a, f"obs after {a}") for a in actions],
                      success, 1.0 if success else 0.2, {"first_observation": "search page"})


def test_preference_rows_are_trl_preference_format_and_parquet_round_trips(tmp_path) -> None:
    prefs = [Preference("buy red shoes", _t(["search[red shoes]", "click[b01]"], True),
                        _t(["search[red shoes]", "click[b02]"], False), "edit:product")]
    rows = preference_rows(prefs)
    assert rows[0]["prompt"] == "buy red shoes"
    assert "click[b01]" in rows[0]["chosen"] and "click[b02]" in rows[0]["rejected"]
    assert rows[0]["source"] == "edit:product"
    path = write_parquet(rows, tmp_path / "prefs.parquet")
    assert read_parquet(path) == rows


def test_stepwise_rows_label_every_step_with_the_outcome() -> None:
    rows = stepwise_rows([_t(["a", "b", "c"], True), _t(["x"], False)])
    assert rows[0]["labels"] == [True, True, True] and len(rows[0]["completions"]) == 3
    assert rows[1]["labels"] == [False]
    assert rows[0]["prompt"].startswith("Instruction: buy red shoes")
