"""TRL exports hold exactly the text our reward models read."""

from __future__ import annotations

import pytest

from agentcritic import envs
from agentcritic.agents import ExpertAgent, rollout
from agentcritic.export import preference_rows, read_parquet, stepwise_rows, write_parquet
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
