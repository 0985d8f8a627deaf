"""What a helper reads of a state (``helper.view``): the env's ``helper_view`` names household's rooms
and things by role, so the same situation in two tasks reads the same; a helper trained on views
reads live states through the same view, and refuses an env whose view it did not learn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from agentcritic.envs.base import TextEnv  # noqa: E402
from agentcritic.envs.household import HouseholdEnv  # noqa: E402
from agentcritic.helper.episode_files import read_episodes  # noqa: E402
from agentcritic.helper.helper_config import CollectConfig, HelperConfig, HelperLabelConfig  # noqa: E402
from agentcritic.helper.helper_model import HelperViewError, helper_text, load_helper  # noqa: E402
from agentcritic.helper.helper_trainer import TrainHelperConfig, run_train_helper  # noqa: E402
from agentcritic.pipeline import run_kind  # noqa: E402
from agentcritic.rm.base_trainer import TrainingError  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def expert_sweep(tmp_path_factory) -> Path:
    """The expert's household episodes on the first 4 training tasks (two of them pnp), as collected."""
    out = tmp_path_factory.mktemp("sweep")
    run_kind("collect", CollectConfig(env="household", policy="expert", schedule="sweep", limit=4, n=1), out,
             progress=False)
    return out


@pytest.fixture(scope="module")
def coin_run(tmp_path_factory) -> Path:
    """A random base on 3 training tasks, helped never or always: both labels occur."""
    out = tmp_path_factory.mktemp("coin")
    run_kind("collect", CollectConfig(env="household", policy="random", p_grid=[0.0, 1.0], n=2, limit=3), out,
             progress=False)
    return out


def _before_last_action(folder: Path, task: str) -> str:
    """The state text the expert's no-help episode of ``task`` saw before its final (goal) action."""
    base = next(e for e in read_episodes(folder) if e.task_id == task and not any(t.helped for t in e.transitions))
    return base.transitions[-1].state_text


def test_the_same_situation_in_two_tasks_reads_the_same(expert_sweep):
    # pnp-0000 and pnp-0001: the expert stands in the goal's room holding the object, in different houses
    a, b = (_before_last_action(expert_sweep, t) for t in ("pnp-0000", "pnp-0001"))
    assert a != b  # different rooms, objects and receptacles …
    view_a, view_b = HouseholdEnv.helper_view(a), HouseholdEnv.helper_view(b)
    assert view_a == view_b  # … one situation
    assert view_a.splitlines()[-1] == "You are in room A and hold object 1. receptacle 1 is in room A."
    assert view_a.splitlines()[0] == "Instruction: Put object 1 on receptacle 1."
    assert "Map of the house" in a and "Map" not in view_a  # the stale map is left out
    # another room for the goal reads differently: the view keeps what decides the ask
    here = re.search(r"You are in the ([a-z ]+) and hold", a.splitlines()[-1]).group(1)
    other = "garage" if here != "garage" else "hallway"
    elsewhere = re.sub(r"is in the [a-z ]+\.$", f"is in the {other}.", a)
    assert HouseholdEnv.helper_view(elsewhere).splitlines()[-1].endswith("receptacle 1 is in room B.")
    assert TextEnv.helper_view(a) == a  # an env without a view: the text as is


def test_a_helper_trained_on_views_reads_live_states_through_them(expert_sweep, coin_run, tiny_bert, tmp_path):
    from agentcritic.rm import ProcessRewardModel

    ProcessRewardModel(tiny_bert, max_length=64).save_pretrained(tmp_path / "prm" / "model")
    helper = HelperConfig(num_epochs=1, batch_size=16, progress=False, max_length=64, backbone=str(tiny_bert),
                          learning_rate=3e-3, warmup_ratio=0.0, eval_fraction=0.25, view="env",
                          labels=HelperLabelConfig(budget=2, state_key="prefix"))
    run = tmp_path / "run"
    run_train_helper(TrainHelperConfig(data=str(coin_run), prm=str(tmp_path / "prm"), helper=helper), run)

    labels = [json.loads(line) for line in (run / "labels.jsonl").read_text().splitlines()]
    raw = {t.state_text for e in read_episodes(coin_run) for t in e.transitions}
    assert labels and all(x["state_text"].startswith("Instruction: ") for x in labels)
    assert {x["state_text"] for x in labels} <= {HouseholdEnv.helper_view(t) for t in raw}
    assert json.loads((run / "helper.json").read_text())["view_env"] == "household"

    loaded = load_helper(run)
    state = _before_last_action(expert_sweep, "pnp-0001")
    assert loaded.text(state, 3, 1) == helper_text(HouseholdEnv.helper_view(state), 3, 1)
    loaded.check_env("household")
    with pytest.raises(HelperViewError, match=r"'household' env's helper_view .* used on 'game24'"):
        loaded.check_env("game24")

    # the view needs the env the episodes came from: a bare episodes file has none recorded
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "episodes.jsonl").write_text((coin_run / "episodes.jsonl").read_text())
    with pytest.raises(TrainingError, match="helper.view = 'env' reads states through the collection's env"):
        run_train_helper(TrainHelperConfig(data=str(bare / "episodes.jsonl"), prm=str(tmp_path / "prm"),
                                           helper=helper), tmp_path / "run2")
    assert not (tmp_path / "run2").exists()  # refused before the PRM scored anything or a folder was made
