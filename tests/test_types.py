from __future__ import annotations

import pytest

from agentcritic.types import Preference, RecordError, Step, Trajectory, Transition


def _traj(task: str = "7", success: bool = True) -> Trajectory:
    return Trajectory(
        env="game24",
        task_id=task,
        instruction="Use 4 4 6 8 to make 24",
        steps=[Step("4 + 8 = 12 (left: 4 6 12)", "Numbers left: 4 6 12", 0.0, {"invalid": False})],
        success=success,
        score=1.0 if success else 0.0,
        meta={"first_observation": "Numbers: 4 4 6 8", "ünïcode": "✓"},
    )


def test_trajectory_json_round_trip_keeps_nested_steps() -> None:
    t = _traj()
    back = Trajectory.from_json(t.to_json())
    assert back == t
    assert isinstance(back.steps[0], Step)
    assert back.actions == ["4 + 8 = 12 (left: 4 6 12)"]


def test_preference_and_transition_round_trip() -> None:
    p = Preference(intent="make 24", chosen=_traj(), rejected=_traj(success=False), source="edit:step")
    back = Preference.from_json(p.to_json())
    assert back == p and isinstance(back.chosen, Trajectory) and isinstance(back.rejected.steps[0], Step)
    tr = Transition("3", "k0", "text", True, "expert", "k1", False, None)
    assert Transition.from_json(tr.to_json()) == tr


def test_bad_records_name_what_is_wrong() -> None:
    with pytest.raises(RecordError, match="missing field.*task_id"):
        Trajectory.from_dict({"env": "x", "instruction": "y"})
    with pytest.raises(RecordError, match="unknown field.*colour"):
        Step.from_dict({"action": "a", "observation": "o", "colour": 1})
    with pytest.raises(RecordError, match="invalid JSON"):
        Step.from_json("{not json")
