"""The helper: DP labels become examples, both backbones train on a tiny model with a falling loss,
class imbalance is weighted or resampled, balanced accuracy is measured on held-out tasks, and a
saved helper loads back and answers the Gate."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from agentcritic.helper.gate import DecisionState, Gate  # noqa: E402
from agentcritic.helper.helper_model import (  # noqa: E402
    Helper,
    HelperClassifier,
    HelperExample,
    HelperLM,
    helper_text,
    load_helper,
)
from agentcritic.helper.helper_config import HelperConfig, HelperLabelConfig  # noqa: E402
from agentcritic.helper.helper_trainer import (  # noqa: E402
    HelperTrainer,
    balanced_accuracy,
    label_examples,
    resample_minority,
    train_helper,
)
from agentcritic.helper.tabular import TabularModel  # noqa: E402
from agentcritic.rm.backbone import make_tiny_backbone  # noqa: E402
from agentcritic.rm.base_trainer import TrainingError  # noqa: E402

from test_helper_dp import critical_episodes, critical_prm  # noqa: E402

ROOMS = ["kitchen", "hall", "bedroom", "garage", "office", "attic"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "llama", "llama")


def toy_examples(n_tasks: int = 40, seed: int = 0) -> list[HelperExample]:
    """Ask (1) exactly when the object is missing from the map — about one state in four."""
    rng = random.Random(seed)
    out = []
    for t in range(n_tasks):
        for step in range(6):
            missing = rng.random() < 0.25
            room = rng.choice(ROOMS)
            text = f"You are in the {room}. " + ("The mug is missing here." if missing else "The mug is on the table.")
            out.append(HelperExample(text, step, rng.randint(1, 3), int(missing), f"task{t}"))
    return out


def config(tmp=None, **kw) -> HelperConfig:
    base = dict(learning_rate=3e-3, num_epochs=6, batch_size=16, warmup_ratio=0.0, progress=False,
                logging_steps=2, eval_fraction=0.25, max_length=64)
    base.update(kw)
    return HelperConfig(**base)


def test_labels_from_the_dp_cover_every_state_and_budget():
    model = TabularModel.from_episodes(critical_episodes(), prm=critical_prm)
    examples = label_examples(model, HelperLabelConfig(budget=2))
    assert len(examples) == 5 * 2  # 5 logged states (one text each) x budget left 1, 2
    asks = {(x.state_text, x.budget_left) for x in examples if x.label}
    assert asks == {("task:a/a/a/a", 1), ("task:a/a/a/a", 2)}
    assert {x.step for x in examples} == {0, 1, 2, 3, 4} and {x.task_id for x in examples} == {"task"}
    lag = label_examples(model, HelperLabelConfig(budget=2, policy="lagrangian", lagrangian_usage=1.0))
    assert {(x.state_text, x.budget_left) for x in lag if x.label} == asks
    reach = label_examples(model, HelperLabelConfig(budget=1, reachable_only=True))
    assert [(x.step, x.label) for x in reach] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1)]


def test_helper_text_and_metrics():
    assert helper_text("room", 3, 2) == "room\nStep: 3\nBudget left: 2"
    assert helper_text("room", 0, float("inf")).endswith("Budget left: unlimited")
    assert balanced_accuracy([1, 0, 0, 0], [1, 1, 0, 0]) == pytest.approx(0.75)
    assert balanced_accuracy([0, 0, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)  # "never ask" scores 0.5
    ex = toy_examples()
    res = resample_minority(ex, 0)
    assert sum(x.label for x in res) == sum(1 - x.label for x in res) == sum(1 - x.label for x in ex)


def test_minilm_shaped_helper_learns_and_round_trips(tiny_bert, tmp_path):
    examples = toy_examples()
    net = HelperClassifier(tiny_bert, max_length=64)
    before = {k: v.clone() for k, v in net.model.state_dict().items()}
    metrics = train_helper(examples, config(), tmp_path / "helper", model=net)
    train = metrics["train"]
    assert train["final_loss"] < train["first_loss"]
    assert any(not torch.equal(before[k], v) for k, v in net.model.state_dict().items())
    ev = metrics["eval"]
    assert ev["tasks"] == 10 and ev["n"] == 60  # a quarter of the 40 tasks, all their states
    assert ev["balanced_accuracy"] > 0.9  # the rule is one word; held-out tasks
    assert metrics["labels"]["train_ask"] + metrics["labels"]["train_continue"] == 180
    on_disk = json.loads((tmp_path / "helper" / "metrics.json").read_text())
    assert on_disk["eval"]["balanced_accuracy"] == pytest.approx(ev["balanced_accuracy"])

    helper = load_helper(tmp_path / "helper")
    assert isinstance(helper.model, HelperClassifier) and helper.max_budget == 5
    texts = [x.text for x in examples[:8]]
    np.testing.assert_allclose(helper.model.score(texts), net.score(texts), atol=1e-5)
    gate = Gate(helper, 1)
    gate.reset()
    missing = DecisionState("t", "k", "You are in the hall. The mug is missing here.")
    present = DecisionState("t", "k", "You are in the hall. The mug is on the table.")
    assert [gate.ask(present, 0), gate.ask(missing, 1), gate.ask(missing, 2)] == [False, True, False]


def test_class_weights_follow_the_imbalance(tiny_bert):
    examples = toy_examples()
    net = HelperClassifier(tiny_bert, max_length=64)
    trainer = HelperTrainer(net, config(eval_fraction=0.0), examples)
    n = len(examples)
    n_pos = sum(x.label for x in examples)
    assert trainer.class_weight == pytest.approx((n / (2 * (n - n_pos)), n / (2 * n_pos)))
    assert trainer.class_weight[1] > 1 > trainer.class_weight[0]
    flat = HelperTrainer(net, config(eval_fraction=0.0, balance="resample"), examples)
    assert flat.class_weight == (1.0, 1.0) and sum(x.label for x in flat.train_data) * 2 == len(flat.train_data)
    with pytest.raises(TrainingError, match="nothing to learn"):
        HelperTrainer(net, config(), [HelperExample("s", 0, 1, 0, f"t{i}") for i in range(8)])
    with pytest.raises(TrainingError, match="label"):
        HelperTrainer(net, config(), [HelperExample("s", 0, 1, 2, "t")])


def test_lora_sft_helper_learns_on_a_tiny_decoder(tiny_llama, tmp_path):
    examples = toy_examples(n_tasks=24)
    lora = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}
    net = HelperLM(tiny_llama, max_length=64, lora=lora)
    lora_before = {k: v.clone() for k, v in net.model.named_parameters() if v.requires_grad}
    assert lora_before and all("lora" in k for k in lora_before)
    metrics = train_helper(examples, config(learning_rate=1e-2, num_epochs=4), tmp_path / "lm", model=net)
    assert metrics["train"]["final_loss"] < metrics["train"]["first_loss"]
    changed = [k for k, v in net.model.named_parameters() if v.requires_grad and not torch.equal(lora_before[k], v)]
    assert changed
    p = net.score([x.text for x in examples[:6]])
    assert np.all((p > 0) & (p < 1))
    helper = load_helper(tmp_path / "lm")
    assert isinstance(helper.model, HelperLM)
    np.testing.assert_allclose(helper.model.score([x.text for x in examples[:6]]), p, atol=1e-5)
    assert isinstance(helper, Helper) and helper.ask(DecisionState("t", "k", "x"), 0, 0) is False


# ----------------------------------------------------------------------------------- the stage
def write_episodes(path, episodes, store_rows: bool = True):
    lines = []
    for k, ep in enumerate(episodes):
        rec = {"transitions": [t.to_dict() for t in ep.transitions], "success": ep.success}
        lines.append(json.dumps({"key": f"ep{k}", "record": rec} if store_rows else rec))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_train_helper_stage_from_episodes_and_a_prm(tiny_bert, tmp_path):
    from agentcritic.helper.episode_files import read_episodes
    from agentcritic.helper.helper_trainer import TrainHelperConfig, run_train_helper
    from agentcritic.rm import ProcessRewardModel

    from test_helper_dp import random_episodes

    collect = tmp_path / "collect"
    collect.mkdir()
    write_episodes(collect / "episodes.jsonl", random_episodes(0, n_tasks=8, n_episodes=80))
    (collect / "other.jsonl").write_text('{"key": "x", "record": {"something": 1}}\n')
    ProcessRewardModel(tiny_bert, max_length=64).save_pretrained(tmp_path / "prm" / "model")
    assert len(read_episodes(collect)) == 80

    cfg = TrainHelperConfig(
        data=str(collect),
        prm=str(tmp_path / "prm"),
        helper=config(num_epochs=1, backbone=str(tiny_bert), labels=HelperLabelConfig(budget=2, state_key="prefix")),
    )
    metrics = run_train_helper(cfg, tmp_path / "run")
    run = tmp_path / "run"
    dp = json.loads((run / "dp.json").read_text())
    succ = [b["predicted_success"] for b in dp["budgets"]]
    assert [b["budget"] for b in dp["budgets"]] == [0, 1, 2, "unlimited"]
    assert succ == sorted(succ) and succ[-1] > succ[0]  # more budget never predicts less success
    labels = [json.loads(line) for line in (run / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 2 * dp["table"]["states"]  # prefix keys: one text per state, b = 1, 2
    assert {x["budget_left"] for x in labels} == {1, 2}
    assert metrics["train"]["n_train"] + metrics["train"]["n_eval"] == len(labels)
    assert isinstance(load_helper(run).model, HelperClassifier)
    again = run_train_helper(cfg, run)  # finished: returns the stored metrics, trains nothing
    assert again["train"]["steps"] == metrics["train"]["steps"]


@pytest.mark.slow
def test_train_helper_defaults_to_bins_off_a_sweep_and_keeps_the_prm_scores(tiny_bert, tmp_path, monkeypatch):
    from agentcritic.helper.helper_trainer import TrainHelperConfig, run_train_helper
    from agentcritic.rm import ProcessRewardModel
    from agentcritic.rm.base_trainer import TrainingError

    from test_helper_dp import random_episodes

    write_episodes(tmp_path / "episodes.jsonl", random_episodes(1, n_tasks=6, n_episodes=40))
    ProcessRewardModel(tiny_bert, max_length=64).save_pretrained(tmp_path / "prm" / "model")
    helper = config(num_epochs=1, backbone=str(tiny_bert), labels=HelperLabelConfig(budget=2))
    assert helper.labels.state_key == "auto"  # bins here: the episodes are not a sweep's
    with pytest.raises(TrainingError, match="give --prm"):  # bins are PRM-score bins: no PRM, a clear error
        run_train_helper(TrainHelperConfig(data=str(tmp_path / "episodes.jsonl"), helper=helper), tmp_path / "none")
    assert not (tmp_path / "none").exists()  # refused before any run folder is made

    cfg = TrainHelperConfig(data=str(tmp_path / "episodes.jsonl"), prm=str(tmp_path / "prm"), helper=helper)
    run_train_helper(cfg, tmp_path / "a")
    assert json.loads((tmp_path / "a" / "dp.json").read_text())["table"]["state_key"] == "bins"
    scores = json.loads((tmp_path / "a" / "prm_scores.json").read_text())
    assert scores["scores"] and str(tmp_path / "prm") in scores["source"]

    # a run holding those scores does not call the PRM again
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "prm_scores.json").write_text((tmp_path / "a" / "prm_scores.json").read_text())
    monkeypatch.setattr(ProcessRewardModel, "score", lambda *a, **k: pytest.fail("the PRM was called again"))
    run_train_helper(cfg, tmp_path / "b")
    assert (tmp_path / "b" / "labels.jsonl").read_text() == (tmp_path / "a" / "labels.jsonl").read_text()


def test_bad_episode_files_name_file_and_line(tmp_path):
    from agentcritic.helper.episode_files import EpisodeDataError, read_episodes

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"transitions": [], "success": true}\n{"not": "an episode"}\n')
    with pytest.raises(EpisodeDataError, match=r"bad.jsonl:2: not an episode"):
        read_episodes(bad)
    bad.write_text("{broken\n")
    with pytest.raises(EpisodeDataError, match=r"bad.jsonl:1: invalid JSON"):
        read_episodes(bad)
    bad.write_text('{"transitions": [{"task_id": "t"}], "success": true}\n')
    with pytest.raises(EpisodeDataError, match=r"bad.jsonl:1: .*missing field"):
        read_episodes(bad)
    with pytest.raises(EpisodeDataError, match="no such file"):
        read_episodes(tmp_path / "nope")


@pytest.mark.slow
def test_train_helper_command(tiny_bert, tmp_path):
    from typer.testing import CliRunner

    from agentcritic.cli import app
    from agentcritic.rm import ProcessRewardModel

    from test_helper_dp import random_episodes

    write_episodes(tmp_path / "episodes.jsonl", random_episodes(3, n_tasks=6, n_episodes=60))
    ProcessRewardModel(tiny_bert, max_length=64).save_pretrained(tmp_path / "prm" / "model")
    runner = CliRunner()
    args = ["train-helper", "--data", str(tmp_path / "episodes.jsonl"), "--prm", str(tmp_path / "prm"),
            "--out", str(tmp_path / "run"), "--backbone", str(tiny_bert), "--budget", "1", "--epochs", "1",
            "--set", "helper.progress=false", "--set", "helper.max_length=64"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "balanced accuracy" in res.output and "held-out" in res.output
    assert (tmp_path / "run" / "helper.json").exists() and (tmp_path / "run" / "model").is_dir()
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    bad = runner.invoke(app, [*args[:2], str(tmp_path / "bad.jsonl"), *args[3:4], str(tmp_path / "prm"), "--out",
                              str(tmp_path / "run2")])
    assert bad.exit_code == 2 and "bad.jsonl:1: invalid JSON" in bad.output
