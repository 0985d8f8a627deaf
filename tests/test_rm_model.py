"""Reward-model behaviour: text fitting, order-preserving batched scoring, pooling, and the export
round trip through plain ``AutoModelForSequenceClassification`` (tiny random backbones, plus the
real MiniLM once)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agentcritic.rendering import render, trajectory_text  # noqa: E402
from agentcritic.rm import ModelFolderError, ProcessRewardModel, RewardModel  # noqa: E402
from agentcritic.rm.backbone import MEAN_LAYER_SCALE, make_tiny_backbone  # noqa: E402
from agentcritic.rm.metrics import auroc, pairwise_accuracy, preference_report, reliability  # noqa: E402
from agentcritic.rm.scoring_model import SETTINGS_FILE, split_blocks  # noqa: E402
from agentcritic.types import Step, Trajectory  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def rm(tiny_bert):
    model = RewardModel(tiny_bert, max_length=96, seed=0)
    with torch.no_grad():  # a random tiny head barely separates inputs; magnify it
        model.model.classifier.weight.mul_(100.0)
    return model


def traj(n_steps: int, tag: str = "x", first: str = "the shop search page") -> Trajectory:
    steps = [Step(f"click[{tag}{i}]", f"page {i} shows items for {tag}{i}") for i in range(n_steps)]
    return Trajectory("shop", "t1", "buy it", steps, None, None, {"first_observation": first})


def pairs_of_mixed_length() -> list[tuple[str, Trajectory | str]]:
    return [
        ("buy red shoes", traj(1)),
        ("buy a lamp with a very long description of what is wanted " * 3, traj(30, "long")),
        ("buy a hat", "Action: search[hat]\nObservation: results"),
        ("buy socks", traj(6, "mid")),
        ("buy a sofa", traj(2, "s")),
    ]


def test_split_blocks_separates_head_and_steps() -> None:
    head, steps = split_blocks("Observation: start\nAction: a\nObservation: o1\nAction: b\nObservation: o2", "Action:")
    assert head == "Observation: start"
    assert steps == ["Action: a\nObservation: o1", "Action: b\nObservation: o2"]


def test_long_trajectory_keeps_intent_first_observation_and_last_steps(rm) -> None:
    long = traj(40, "step", first="welcome to the shop")
    (feat,) = rm.encode([("buy the blue kettle", long)])
    assert len(feat["input_ids"]) <= rm.max_length
    text = rm.tokenizer.decode(feat["input_ids"])
    assert "buy the blue kettle" in text  # the intent, first segment
    assert "welcome to the shop" in text  # the first observation
    assert "earlier steps cut" in text  # the cut is marked
    assert "step39" in text and "step38" in text  # the last steps
    assert "step5 " not in text and "step20 " not in text  # the middle is gone
    assert text.index("welcome") < text.index("earlier steps cut") < text.index("step39")
    # short inputs are untouched
    (short,) = rm.encode([("buy", traj(1))])
    assert "cut" not in rm.tokenizer.decode(short["input_ids"])


def test_encoders_read_one_instruction_text_unless_told_to_read_a_segment_pair(rm) -> None:
    (feat,) = rm.encode([("buy the blue kettle", traj(2))])
    text = rm.tokenizer.decode(feat["input_ids"])
    assert text.lower().startswith("[cls] instruction : buy the blue kettle observation")
    assert text.count("[SEP]") == 1 and set(feat.get("token_type_ids", [0])) == {0}
    rm.settings.pair_input = True
    try:
        (pair,) = rm.encode([("buy the blue kettle", traj(2))])
    finally:
        rm.settings.pair_input = False
    assert rm.tokenizer.decode(pair["input_ids"]).count("[SEP]") == 2 and 1 in pair["token_type_ids"]


def test_scores_keep_input_order_under_length_sorting(rm) -> None:
    pairs = pairs_of_mixed_length()
    batched = rm.score(pairs, batch_size=2)  # sorted by length inside, several batches
    one_by_one = np.array([rm.score([p])[0] for p in pairs])
    assert batched.shape == (len(pairs),) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    reversed_scores = rm.score(pairs[::-1], batch_size=3)
    np.testing.assert_allclose(reversed_scores[::-1], batched, atol=1e-5)
    assert len(set(np.round(batched, 6))) == len(pairs)  # distinct inputs, distinct scores


def test_cpu_scoring_batches_never_pad_more_than_the_limit() -> None:
    from agentcritic.rm.scoring_model import length_batches

    lengths = [256, 250, 240, 200, 190, 100, 99, 98, 97, 60]
    spans = length_batches(lengths, batch_size=3, max_padding=0.2)
    assert spans == [(0, 3), (3, 5), (5, 8), (8, 9), (9, 10)]
    for lo, hi in spans:
        assert hi - lo <= 3 and min(lengths[lo:hi]) >= 0.8 * lengths[lo]
    assert length_batches(lengths, batch_size=4) == [(0, 4), (4, 8), (8, 10)]  # no limit: count only
    assert length_batches([], batch_size=4) == []


def test_string_and_trajectory_inputs_agree(rm) -> None:
    t = traj(3)
    assert rm.score([("buy", t)])[0] == pytest.approx(rm.score([("buy", trajectory_text(t))])[0], abs=1e-6)
    with pytest.raises(TypeError, match="pair 0"):
        rm.score([("buy", 42)])


def test_mean_pooling_layer_computes_the_masked_mean(tiny_bert) -> None:
    """The appended layer's [CLS] output is LayerNorm(8·masked mean + h_cls) of the backbone states."""
    rm = RewardModel(tiny_bert, max_length=96, pooling="mean")
    batch = rm.tokenize(pairs_of_mixed_length()[:3])  # padded: the mean must ignore pads
    with torch.no_grad():
        hs = rm.model.bert(**batch, output_hidden_states=True).hidden_states
    h, out = hs[-2], hs[-1][:, 0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (h * mask).sum(1) / mask.sum(1)
    expected = torch.nn.functional.layer_norm(
        MEAN_LAYER_SCALE * mean + h[:, 0], (h.shape[-1],), eps=rm.model.config.layer_norm_eps
    )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    assert rm.info["pooling"] == "mean" and rm.model.config.num_hidden_layers == 3


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_fast_cls_path_equals_the_plain_forward(tiny_bert, pooling) -> None:
    rm = RewardModel(tiny_bert, max_length=96, pooling=pooling)
    batch = rm.tokenize(pairs_of_mixed_length())
    with torch.no_grad():
        plain = rm.model(**batch).logits[:, 0]
        fast = rm.scorer(**batch)
    assert rm.scorer.fast
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)


def _automodel_scores(path, batch):
    from transformers import AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1).eval()
    with torch.no_grad():
        return auto, auto(**batch).logits[:, 0].numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_export_round_trip_through_automodel(tiny_bert, tmp_path, pooling) -> None:
    model = RewardModel(tiny_bert, max_length=80, pooling=pooling, seed=3)
    with torch.no_grad():  # move away from the init so the head matters
        for p in model.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pairs = pairs_of_mixed_length()
    ours = model.score(pairs)
    out = model.save_pretrained(tmp_path / "rm")
    auto, theirs = _automodel_scores(out, model.tokenize(pairs))
    assert type(auto).__name__ == "BertForSequenceClassification"
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    doc = json.loads((out / SETTINGS_FILE).read_text())
    assert doc["kind"] == "outcome" and doc["pooling"] == pooling and doc["text"]["max_length"] == 80
    back = RewardModel.from_pretrained(out)
    assert back.max_length == 80 and back.info["pooling"] == pooling
    np.testing.assert_allclose(back.score(pairs), ours, atol=1e-6)
    # saving again over the folder replaces it cleanly
    model.save_pretrained(out)
    assert not list(tmp_path.glob(".rm.*"))


def test_export_round_trip_with_the_real_minilm(tmp_path) -> None:
    model = RewardModel(max_length=128)  # the shipped all-MiniLM-L6-v2, stock [CLS] head
    assert model.info["pooling"] == "cls" and model.model.config.num_hidden_layers == 6
    pairs = pairs_of_mixed_length()[:3]
    ours = model.score(pairs)
    out = model.save_pretrained(tmp_path / "minilm_rm")
    _, theirs = _automodel_scores(out, model.tokenize(pairs))
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


def test_decoder_backbone_with_lora_pools_the_last_token_and_round_trips(tmp_path) -> None:
    pytest.importorskip("peft")
    folder = make_tiny_backbone(tmp_path / "llama", "llama")
    model = RewardModel(folder, max_length=64, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    assert model.info["pooling"] == "last" and not model.settings.pair_input
    trainable = [n for n, p in model.model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in trainable) and any("score" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.model.named_parameters():
            if "lora_B" in n:
                p.add_(0.1 * torch.randn_like(p))  # LoRA B starts at zero: make the adapters matter
    pairs = pairs_of_mixed_length()
    ours = model.score(pairs, batch_size=2)
    alone = np.array([model.score([p])[0] for p in pairs])
    np.testing.assert_allclose(ours, alone, atol=1e-5)  # right padding does not move the pooled token
    out = model.save_pretrained(tmp_path / "llama_rm")
    _, theirs = _automodel_scores(out, model.tokenize(pairs))
    np.testing.assert_allclose(theirs, ours, atol=1e-5)  # LoRA merged into a standard folder
    np.testing.assert_allclose(RewardModel.from_pretrained(out).score(pairs), ours, atol=1e-5)


def test_process_reward_model_scores_probabilities_and_round_trips(tiny_bert, tmp_path) -> None:
    prm = ProcessRewardModel(tiny_bert, max_length=64)
    items = ["Instruction: buy\nAction: a\nNext action by: agent", ("Instruction: buy\nAction: a", "intervention")]
    p = prm.score(items)
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(1 / (1 + np.exp(-prm.logit_scores(items))), p, atol=1e-6)
    out = prm.save_pretrained(tmp_path / "prm")
    np.testing.assert_allclose(ProcessRewardModel.from_pretrained(out).score(items), p, atol=1e-6)
    with pytest.raises(ModelFolderError, match="process"):
        RewardModel.from_pretrained(out)
    with pytest.raises(ModelFolderError, match="agentcritic_rm.json"):
        RewardModel.from_pretrained(tiny_bert)


def test_pairwise_accuracy_and_report() -> None:
    assert pairwise_accuracy([1, 2, 3], [0, 5, 3]) == pytest.approx((1 + 0 + 0.5) / 3)
    rep = preference_report([1.0, 2.0, 0.0, 3.0], [0.0, 1.0, 1.0, 1.0], ["a", "a", "b", "b"], bins=4)
    assert rep["accuracy"] == 0.75
    assert rep["per_source"] == {
        "a": {"n": 2, "accuracy": 1.0, "mean_margin": 1.0},
        "b": {"n": 2, "accuracy": 0.5, "mean_margin": 0.5},
    }
    assert sum(rep["histogram"]["chosen"]) == 4 and sum(rep["histogram"]["rejected"]) == 4


def test_auroc_matches_the_pair_count_definition_and_reliability_bins() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 1)  # many ties
    labels = (rng.random(200) < scores).astype(float)
    pos, neg = scores[labels == 1], scores[labels == 0]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(scores, labels) == pytest.approx(brute)
    assert auroc([0.1, 0.9], [0, 1]) == 1.0 and np.isnan(auroc([0.1, 0.2], [1, 1]))
    rel = reliability([0.05, 0.15, 0.12, 0.95], [0, 1, 0, 1], bins=10)
    assert [b["count"] for b in rel["bins"]][:2] == [1, 2] and rel["bins"][9]["count"] == 1
    assert rel["bins"][1]["observed"] == 0.5 and rel["bins"][5]["mean_predicted"] is None


def test_the_model_reads_the_one_rendering(rm) -> None:
    echo = Trajectory("shop", "t1", "buy it", [Step("search[red shoes]", "Instruction: [SEP] buy it [SEP] results")],
                      None, None, {"first_observation": "Instruction: [SEP] buy it [SEP] search page"})
    assert rm.pair_texts([("buy it", echo)]) == [("buy it", "Observation: search page\nAction: search[red shoes]\n"
                                                            "Observation: results")]  # the shop's echo is dropped
    assert render("buy it", echo) == "Instruction: buy it\n" + rm.pair_texts([("buy it", echo)])[0][1]
    unknown = Trajectory("not-registered", "t", "i", [Step("a", "o")])
    assert rm.pair_texts([("i", unknown)])[0][1] == "Action: a\nObservation: o"


def test_models_saved_with_the_plain_rendering_keep_reading_raw_observations(rm, tmp_path) -> None:
    won = Trajectory("game24", "1", "x", [Step("Answer: 8 * 3 = 24", "Correct: 8 * 3 = 24")])
    assert "Correct" not in rm.pair_texts([("x", won)])[0][1]
    rm.save_pretrained(tmp_path / "old")
    doc = json.loads((tmp_path / "old" / SETTINGS_FILE).read_text())
    doc["text"]["render"] = "steps"  # as saved before reward models read the env's view
    (tmp_path / "old" / SETTINGS_FILE).write_text(json.dumps(doc))
    old = RewardModel.from_pretrained(tmp_path / "old")
    assert old.pair_texts([("x", won)])[0][1] == "Action: Answer: 8 * 3 = 24\nObservation: Correct: 8 * 3 = 24"
