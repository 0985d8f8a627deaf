"""Reward-model training: the loss falls and the weights change (tiny backbone), held-out accuracy is
reported per source and on extra sets, a killed run resumes to the same weights, and the process RM
separates separable data (AUROC)."""

from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from pydantic import ValidationError  # noqa: E402

from agentcritic.rm import (  # noqa: E402
    PRMConfig,
    ProcessRewardModel,
    RewardConfig,
    RewardModel,
    RewardTrainer,
    TrainingError,
    latest_checkpoint,
    train_process_reward_model,
    train_reward_model,
)
from agentcritic.rm.base_trainer import group_split, length_grouped_batches  # noqa: E402
from agentcritic.types import Preference, Step, Trajectory  # noqa: E402

COLORS = ["red", "blue", "green", "black", "white", "pink"]
ITEMS = ["shoes", "shirt", "bag", "hat", "lamp"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def episode(item: str, color: str, finish: bool = True, extra: int = 0, task: str = "t") -> Trajectory:
    steps = [
        Step(f"search[{color} {item}]", f"results: {color} {item} b01, other {item} b02"),
        Step("click[b01]", f"{item} page with options " + " ".join(COLORS)),
    ]
    steps += [Step("click[next]", f"more {item} results") for _ in range(extra)]
    steps.append(Step(f"click[{color}]", f"you chose {color}"))
    if finish:
        steps.append(Step("click[buy now]", "thank you for shopping"))
    return Trajectory("shop", task, "i", steps, None, None, {"first_observation": "search page"})


def toy_preferences(n: int, seed: int) -> list[Preference]:
    """Two sources: 'truncate' (learnable from the trajectory alone) and 'edit:option'."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        color, item = rng.choice(COLORS), rng.choice(ITEMS)
        intent = f"i want a {color} {item} (#{seed}-{k})"
        task = f"{seed}-{k // 2}"  # two intents per task, as synthesis makes them
        if k % 2:
            bad = episode(item, rng.choice([c for c in COLORS if c != color]), extra=k % 3, task=task)
            source = "edit:option"
        else:
            bad, source = episode(item, color, finish=False, extra=k % 3, task=task), "truncate"
        out.append(Preference(intent, episode(item, color, extra=k % 3, task=task), bad, source))
    return out


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.model.state_dict().items()}


def test_training_lowers_the_loss_changes_the_weights_and_reports_accuracy(tiny_bert, tmp_path) -> None:
    rm = RewardModel(tiny_bert, max_length=64, seed=0)
    before = weights(rm)
    cfg = RewardConfig(
        num_epochs=3,
        batch_size=8,
        learning_rate=3e-3,
        logging_steps=3,
        eval_fraction=0.2,
        progress=False,
        output_dir=str(tmp_path / "run"),
        save_steps=100,
    )
    metrics = train_reward_model(rm, toy_preferences(120, 0), cfg, eval_sets={"other_shop": toy_preferences(24, 1)})
    losses = [e["loss"] for e in metrics["train"]["log_history"] if "loss" in e]
    assert len(losses) >= 5
    assert np.mean(losses[-2:]) < losses[0] - 0.1  # the loss falls
    after = weights(rm)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > 0.8 * len(before)
    assert "classifier.weight" in changed and "bert.encoder.layer.0.attention.self.query.weight" in changed
    ev = metrics["eval"]
    assert ev["n"] == metrics["train"]["n_eval"] > 0
    assert set(ev["per_source"]) == {"truncate", "edit:option"}
    assert sum(s["n"] for s in ev["per_source"].values()) == ev["n"]
    assert ev["per_source"]["truncate"]["accuracy"] >= 0.9  # the learnable source is learnt
    assert (
        metrics["eval_sets"]["other_shop"]["n"] == 24 and 0.0 <= metrics["eval_sets"]["other_shop"]["accuracy"] <= 1.0
    )
    assert metrics["train"]["pairs_per_second"] > 0
    # held-out intents were not trained on
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["eval"]["accuracy"] == pytest.approx(ev["accuracy"])
    assert RewardModel.from_pretrained(tmp_path / "run" / "model").score(
        [("i want a red hat", episode("hat", "red"))]
    ).shape == (1,)


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files under ``folder``: tag -> [(step, value)].

    Event files are TFRecords (length, its CRC, an ``Event`` protobuf, its CRC); tensorboardX ships
    the protobuf, so no TensorFlow and no TensorBoard server are needed to read them back.
    """
    import struct

    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_report_to_tensorboard_writes_the_logged_curves(tiny_bert, tmp_path) -> None:
    pytest.importorskip("tensorboardX")
    rm = RewardModel(tiny_bert, max_length=64, seed=0)
    cfg = RewardConfig(num_epochs=2, batch_size=8, learning_rate=1e-3, logging_steps=2, eval_steps=3,
                       eval_fraction=0.2, progress=False, save_model=False, output_dir=str(tmp_path / "run"),
                       report_to="tensorboard")
    metrics = train_reward_model(rm, toy_preferences(48, 4), cfg)
    logged = [(e["step"], e["loss"]) for e in metrics["train"]["log_history"] if "loss" in e]
    assert len(logged) >= 3
    scalars = tensorboard_scalars(tmp_path / "run" / "runs")
    assert [s for s, _ in scalars["train/loss"]] == [s for s, _ in logged]  # one point per JSON log entry
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([v for _, v in logged], rel=1e-6)
    assert {"train/learning_rate", "train/accuracy", "train/pairs_per_second"} <= set(scalars)
    evals = [e for e in metrics["train"]["log_history"] if "eval" in e]
    assert evals and [s for s, _ in scalars["eval/accuracy"]] == [e["step"] for e in evals]
    # the same run without report_to writes no event file and the same losses
    plain = train_reward_model(RewardModel(tiny_bert, max_length=64, seed=0), toy_preferences(48, 4),
                               cfg.model_copy(update={"output_dir": str(tmp_path / "plain"), "report_to": "none"}))
    assert [(e["step"], e["loss"]) for e in plain["train"]["log_history"] if "loss" in e] == logged
    assert not (tmp_path / "plain" / "runs").exists()


def test_report_to_tensorboard_without_the_package_or_a_folder_is_a_clear_error(tiny_bert, tmp_path,
                                                                                monkeypatch) -> None:
    rm = RewardModel(tiny_bert, max_length=32)
    with pytest.raises(TrainingError, match=r"under output_dir, which is not set"):
        RewardTrainer(rm, RewardConfig(report_to="tensorboard"), toy_preferences(4, 0))
    for name in ("tensorboardX", "tensorboard"):  # as if neither writer were installed
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(TrainingError, match=r"pip install 'agentcritic\[tensorboard\]'") as err:
        RewardTrainer(rm, RewardConfig(report_to="tensorboard", output_dir=str(tmp_path / "r")), toy_preferences(4, 0))
    assert "\n" not in str(err.value) and not (tmp_path / "r").exists()
    with pytest.raises(ValidationError, match="report_to"):
        RewardConfig(report_to="wandb")


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_weights(tiny_bert, tmp_path) -> None:
    data = toy_preferences(48, 2)
    cfg = dict(
        num_epochs=2,
        batch_size=8,
        learning_rate=5e-4,
        eval_fraction=0.0,
        progress=False,
        save_steps=2,
        save_model=False,
        disable_dropout=False,
        seed=5,
    )  # dropout on: RNG state must resume too

    full = RewardModel(tiny_bert, max_length=64, seed=1)
    m_full = train_reward_model(full, data, RewardConfig(output_dir=str(tmp_path / "a"), **cfg))
    assert m_full["train"]["steps"] == 12

    def kill_after_step_5(state, _info):
        if state.step == 5:  # checkpoint at step 4; step 5's update is lost with the process
            raise Killed

    first = RewardModel(tiny_bert, max_length=64, seed=1)
    with pytest.raises(Killed):
        train_reward_model(
            first, data, RewardConfig(output_dir=str(tmp_path / "b"), **cfg), callbacks=[kill_after_step_5]
        )
    assert latest_checkpoint(tmp_path / "b").name == "step-0000004"

    resumed = RewardModel(tiny_bert, max_length=64, seed=99)  # another init: the checkpoint must win
    m_resumed = train_reward_model(resumed, data, RewardConfig(output_dir=str(tmp_path / "b"), **cfg))
    assert m_resumed["train"]["steps"] == 12
    a, b = weights(full), weights(resumed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0, msg=lambda m, k=k: f"{k}: {m}")
    assert len(list((tmp_path / "b" / "checkpoints").iterdir())) <= 2  # save_total_limit

    with pytest.raises(TrainingError, match="batch_size"):  # resuming with another batching is refused
        RewardTrainer(
            RewardModel(tiny_bert, max_length=64),
            RewardConfig(output_dir=str(tmp_path / "b"), **{**cfg, "batch_size": 4}),
            data,
        ).train()


def test_process_reward_model_learns_separable_data(tiny_bert) -> None:
    rng = random.Random(0)
    examples = []
    for k in range(160):
        good = k % 2 == 0
        steps = " ".join(
            rng.choice(["look", "open drawer", "go to kitchen", "take mug"]) for _ in range(rng.randint(1, 4))
        )
        flag = "the goal is in reach" if good else "the path is blocked"
        actor = rng.choice(["agent", "intervention"])
        examples.append(
            (
                f"Instruction: fetch a mug\nAction: {steps}\nObservation: {flag}\nNext action by: {actor}",
                float(good),
                f"task{k}",
            )
        )
    prm = ProcessRewardModel(tiny_bert, max_length=48, seed=0)
    before = weights(prm)
    metrics = train_process_reward_model(
        prm,
        examples[:120],
        PRMConfig(num_epochs=4, batch_size=8, learning_rate=2e-3, progress=False, calibration_bins=5),
        eval_examples=examples[120:],
    )
    losses = [e["loss"] for e in metrics["train"]["log_history"] if "loss" in e]
    assert len(losses) >= 5 and losses[-1] < losses[0]  # the loss is logged and falls
    after = weights(prm)
    assert "classifier.weight" in [k for k in before if not torch.equal(before[k], after[k])]
    ev = metrics["eval"]
    assert ev["n"] == 40 and ev["auroc"] > 0.95
    assert sum(b["count"] for b in ev["reliability"]["bins"]) == 40 and len(ev["reliability"]["bins"]) == 5
    p = prm.score([examples[120][0], examples[121][0]])
    assert p[0] > p[1]  # success-looking prefix above the blocked one


def test_length_grouped_batches_are_deterministic_and_cover_everything() -> None:
    lengths = [random.Random(i).randint(5, 500) for i in range(200)]
    a = length_grouped_batches(lengths, 16, seed=3, epoch=1)
    assert a == length_grouped_batches(lengths, 16, seed=3, epoch=1)
    assert a != length_grouped_batches(lengths, 16, seed=3, epoch=2)
    assert sorted(i for b in a for i in b) == list(range(200))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a])
    random_spread = np.mean(
        [
            max(lengths[i] for i in b) - min(lengths[i] for i in b)
            for b in length_grouped_batches(lengths, 16, 3, 1, group=False)
        ]
    )
    assert spread < 0.2 * random_spread  # little padding inside a batch


def test_units_keep_items_of_one_unit_together_and_no_units_means_one_item_each() -> None:
    lengths = [random.Random(i).randint(5, 500) for i in range(240)]
    units = [i // 4 for i in range(240)]  # 60 units of 4 items (a positive with four negatives)
    batches = length_grouped_batches(lengths, 16, seed=1, epoch=0, units=units)
    assert sorted(i for b in batches for i in b) == list(range(240))
    assert all(len(b) == 16 for b in batches)
    split = sum(len({units[i] for i in b} & {units[i] for i in c}) for b in batches for c in batches if b is not c)
    assert split == 0  # 4 divides 16: no unit is cut in two by a batch boundary
    singletons = length_grouped_batches(lengths, 16, seed=1, epoch=0, units=list(range(240)))
    assert singletons == length_grouped_batches(lengths, 16, seed=1, epoch=0)


def shared_positive_preferences(n_positives: int, negatives: int, seed: int) -> list[Preference]:
    """Each positive appears in ``negatives`` pairs (an edit, a truncation, ...), as synthesis makes them."""
    rng = random.Random(seed)
    out = []
    for k in range(n_positives):
        color, item = rng.choice(COLORS), rng.choice(ITEMS)
        intent = f"i want a {color} {item} (#{k})"
        good = episode(item, color, extra=k % 3)
        others = [c for c in COLORS if c != color]
        for j in range(negatives):
            bad = episode(item, others[j], extra=k % 3) if j else episode(item, color, finish=False, extra=k % 3)
            out.append(Preference(intent, good, bad, "edit:option" if j else "truncate"))
    return out


def test_shared_texts_give_the_same_loss_and_gradient_with_fewer_rows(tiny_bert, monkeypatch) -> None:
    prefs = shared_positive_preferences(4, 3, seed=0)  # 12 pairs, 4 + 12 = 16 distinct inputs of 24
    grads, losses, rows = {}, {}, {}
    for share in (True, False):
        rm = RewardModel(tiny_bert, max_length=64, seed=0)
        trainer = RewardTrainer(rm, RewardConfig(share_texts=share, eval_fraction=0.0, progress=False), prefs)
        items = trainer._featurize(trainer.train_data)
        seen = []
        collate = rm.collate
        monkeypatch.setattr(rm, "collate", lambda feats, device=None, _c=collate: seen.append(len(feats)) or _c(feats, device))
        net = rm.scorer
        net.eval()  # no dropout (the trainer's default), so equal inputs give equal rewards
        net.zero_grad()
        loss, _ = trainer._batch_loss(net, items)
        loss.backward()
        losses[share] = float(loss.detach())
        grads[share] = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        rows[share] = seen[0]
    assert rows == {True: 16, False: 24}
    assert losses[True] == pytest.approx(losses[False], abs=1e-6)
    assert torch.allclose(grads[True], grads[False], atol=1e-6)


def test_training_batches_the_pairs_of_one_positive_together(tiny_bert) -> None:
    prefs = shared_positive_preferences(16, 4, seed=1)  # 64 pairs
    rm = RewardModel(tiny_bert, max_length=64, seed=0)
    trainer = RewardTrainer(rm, RewardConfig(batch_size=8, eval_fraction=0.0, progress=False), prefs)
    items = trainer._featurize(trainer.train_data)
    units = [it["unit"] for it in items]
    batches = trainer._local_batches([it["length"] for it in items], 0, units)
    distinct = sum(len({k for i in b for k in items[i]["keys"]}) for b in batches)
    assert distinct <= 16 + 64 + 2  # each positive read once (a unit cut at most by a boundary or two)


def test_held_out_split_keeps_each_key_on_one_side() -> None:
    keys = [f"task{k % 25}" for k in range(100)]
    train, held = group_split(keys, 0.2, seed=0)
    assert sorted(train + held) == list(range(100))
    assert {keys[i] for i in train}.isdisjoint({keys[i] for i in held})
    assert 15 <= len(held) <= 30
    assert group_split(keys, 0.2, seed=0) == (train, held)  # seeded
    assert group_split(keys, 0.2, seed=1) != (train, held)
    # the split depends on the keys, not on their order
    order = list(range(100))
    random.Random(5).shuffle(order)
    _, held_shuffled = group_split([keys[i] for i in order], 0.2, seed=0)
    assert sorted(order[i] for i in held_shuffled) == held


def test_items_sharing_any_key_of_a_tuple_stay_together_and_one_group_holds_nothing_out() -> None:
    # a chain of pairs spanning two tasks: a-b, b-c, c-d join a..d into one group
    keys = [("a",), ("a", "b"), ("b", "c"), ("c", "d"), ("d",)] + [(f"x{k}",) for k in range(20)]
    for seed in range(10):
        train, held = group_split(keys, 0.3, seed=seed)
        chain = set(range(5))
        assert chain <= set(train) or chain <= set(held)
    assert group_split(["t"] * 10, 0.5, seed=0) == (list(range(10)), [])  # one task: no honest held-out
    assert group_split([("t", "u"), ("u",), ("t",)], 0.5, seed=0) == ([0, 1, 2], [])


def test_bad_inputs_and_configs_fail_with_clear_messages(tiny_bert) -> None:
    rm = RewardModel(tiny_bert, max_length=32)
    with pytest.raises(TrainingError, match=r"train_dataset\[0\]: expected a Preference"):
        RewardTrainer(rm, RewardConfig(), [("intent", "text")])
    with pytest.raises(TrainingError, match="empty"):
        RewardTrainer(rm, RewardConfig(), [])
    with pytest.raises(TypeError, match="RewardTrainer trains a RewardModel, got ProcessRewardModel"):
        RewardTrainer(ProcessRewardModel(tiny_bert, max_length=32), RewardConfig(), toy_preferences(2, 0))
    with pytest.raises(ValidationError, match="learning_rat"):
        RewardConfig(learning_rat=1e-4)
    with pytest.raises(ValidationError):
        RewardConfig(batch_size=0)
    with pytest.raises(TrainingError, match="positions"):
        RewardTrainer(rm, RewardConfig(max_length=4096), toy_preferences(2, 0))
    with pytest.raises(TrainingError, match="outside"):
        train_process_reward_model(ProcessRewardModel(tiny_bert, max_length=32), [("text", 1.5)])


def test_freezing_keeps_the_embeddings_and_lower_layers_fixed(tiny_bert) -> None:
    rm = RewardModel(tiny_bert, max_length=48, seed=0)
    before = weights(rm)
    train_reward_model(
        rm,
        toy_preferences(32, 3),
        RewardConfig(max_steps=3, batch_size=8, learning_rate=1e-3, eval_fraction=0.0, progress=False, freeze_layers=1),
    )
    after = weights(rm)
    for k in before:
        same = torch.equal(before[k], after[k])
        if k.startswith(("bert.embeddings.", "bert.encoder.layer.0.")):
            assert same, k
        elif k.startswith(("bert.encoder.layer.1.", "classifier.")):
            assert not same, k
    assert all(p.requires_grad for p in rm.model.parameters())  # unfrozen again for later training


def test_every_trainer_config_field_has_a_default_and_one_line_of_help() -> None:
    from agentcritic.helper.helper_config import HelperConfig, HelperLabelConfig
    from agentcritic.rm.base_config import TrainerConfig

    for config in (TrainerConfig, RewardConfig, PRMConfig, HelperConfig, HelperLabelConfig):
        for name, field in config.model_fields.items():
            assert not field.is_required(), f"{config.__name__}.{name} has no default"
            assert field.description and "\n" not in field.description, f"{config.__name__}.{name} has no help"
        config()  # the defaults validate
    assert RewardConfig().report_to == "none"


def test_prm_examples_from_transitions_use_monte_carlo_labels() -> None:
    from agentcritic.rm import examples_from_transitions, prm_text
    from agentcritic.types import Transition

    logs = [
        Transition("t1", "s0", "Instruction: fetch\n", False, "agent", "s1", False, True),
        Transition("t1", "s0", "Instruction: fetch\n", False, "agent", "s1", False, False),
        Transition("t1", "s0", "Instruction: fetch\n", True, "expert", "s2", False, True),
        Transition("t2", "s9", "Instruction: other\n", False, "agent", "s9", True, None),  # unlabelled: skipped
    ]
    plain = examples_from_transitions(logs)
    assert [e.label for e in plain] == [1.0, 0.0, 1.0] and plain[0].group == "t1"
    assert plain[2].text == prm_text("Instruction: fetch\n", True) and plain[2].text.endswith(
        "Next action by: intervention"
    )
    averaged = examples_from_transitions(logs, average_by_state=True)
    assert sorted((e.text.endswith("intervention"), e.label) for e in averaged) == [(False, 0.5), (True, 1.0)]
