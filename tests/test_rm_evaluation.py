"""Reward-model evaluation: preference files are read strictly (errors name file and line), the
report's numbers equal a direct computation, per-source/per-env breakdowns add up, the JSON is
strict, and cross-domain training tests on the other env only."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from agentcritic.rm.evaluation import (
    PreferenceDataError,
    cross_domain_matrix,
    env_of,
    evaluate_reward_model,
    format_report,
    preference_metrics,
    read_preference_files,
    read_preferences,
    write_report,
)
from agentcritic.types import Preference, Step, Trajectory

COLORS = ["red", "blue", "green", "black", "white", "pink"]
ITEMS = ["shoes", "shirt", "bag", "hat", "lamp"]


def shop_episode(item: str, color: str, finish: bool = True, task: str = "t", meta: dict | None = None) -> Trajectory:
    steps = [
        Step(f"search[{color} {item}]", f"results: {color} {item} b01, other {item} b02"),
        Step("click[b01]", f"{item} page with options " + " ".join(COLORS)),
        Step(f"click[{color}]", f"you chose {color}"),
    ]
    if finish:
        steps.append(Step("click[buy now]", "thank you for shopping"))
    return Trajectory("shop", task, "i", steps, None, None, {"first_observation": "search page", **(meta or {})})


def game24_episode(nums: list[int], finish: bool = True, task: str = "g") -> Trajectory:
    steps = [Step(f"{nums[0]} + {nums[1]} = {nums[0] + nums[1]}", "Numbers left: ...")]
    if finish:
        steps.append(Step("Answer: (1 + 2) * 8 = 24", "Correct."))
    return Trajectory("game24", task, "i", steps, None, None, {"first_observation": "Numbers: " + str(nums)})


EXPLORERS = [{"explorer": "random", "policy": "random"}, {"explorer": "smollm2", "policy": "smollm2-t0.7-eps0.1"},
             {"policy": "expert-eps0.2"}]  # the last as recorded before synthesis named its explorer
INTENT_SOURCES = ["template", "llm_rephrase", "hindsight"]


def shop_prefs(n: int, seed: int) -> list[Preference]:
    """Two pairs (two intents) per task, as synthesis makes them; explorers and intent sources vary."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        color, item = rng.choice(COLORS), rng.choice(ITEMS)
        intent = f"i want a {color} {item} (#{seed}-{k})"
        task = f"s{seed}-t{k // 2}"
        meta = {**EXPLORERS[k % 3], "intent_source": INTENT_SOURCES[(k // 3) % 3]}
        if k % 2:
            bad = shop_episode(item, rng.choice([c for c in COLORS if c != color]), task=task)
            source = "edit:option"
        else:
            bad, source = shop_episode(item, color, finish=False, task=task), "truncate"
        out.append(Preference(intent, shop_episode(item, color, task=task, meta=meta), bad, source))
    return out


def game24_prefs(n: int, seed: int) -> list[Preference]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        nums = [rng.randint(1, 13) for _ in range(4)]
        intent = f"Use the numbers {' '.join(map(str, nums))} to obtain 24 (#{k})"
        task = f"s{seed}-g{k}"
        out.append(Preference(intent, game24_episode(nums, task=task), game24_episode(nums, False, task), "truncate"))
    return out


def write_lines(path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


# ----------------------------------------------------------------------------------- reading
def test_reads_bare_and_store_wrapped_lines_in_order(tmp_path) -> None:
    prefs = shop_prefs(3, 0)
    f = tmp_path / "preferences.jsonl"
    lines = [prefs[0].to_json(), json.dumps({"key": "k1", "record": prefs[1].to_dict()}), "", prefs[2].to_json()]
    write_lines(f, lines)
    got = read_preferences(f)
    assert got == prefs
    assert env_of(got[0]) == "shop"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"intent": "x", "chosen": ', r"bad\.jsonl:2: invalid JSON"),
        ('[1, 2]', r"bad\.jsonl:2: expected a JSON object describing a Preference, got list"),
        (
            json.dumps(Trajectory("shop", "t", "i").to_dict()),  # a record of the wrong type
            r"bad\.jsonl:2: not a Preference record: .*unknown field",
        ),
        ('{"intent": "x", "source": "s", "chosen": {}}', r"bad\.jsonl:2: not a Preference record: .*missing field"),
        (
            json.dumps({**shop_prefs(1, 0)[0].to_dict(), "chosen": "a string"}),
            r"bad\.jsonl:2: field 'chosen' must be a Trajectory object",
        ),
        (
            json.dumps({**shop_prefs(1, 0)[0].to_dict(), "intent": ""}),
            r"bad\.jsonl:2: field 'intent' must be a non-empty string",
        ),
    ],
)
def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path, line, message) -> None:
    f = tmp_path / "bad.jsonl"
    write_lines(f, [shop_prefs(1, 0)[0].to_json(), line, shop_prefs(1, 1)[0].to_json()])
    with pytest.raises(PreferenceDataError, match=message):
        read_preferences(f)


def test_a_torn_last_line_is_skipped_but_missing_or_empty_files_are_errors(tmp_path) -> None:
    prefs = shop_prefs(2, 0)
    f = tmp_path / "p.jsonl"
    f.write_text(prefs[0].to_json() + "\n" + prefs[1].to_json()[:40])  # killed mid-write
    assert read_preferences(f) == prefs[:1]
    with pytest.raises(PreferenceDataError, match="no such preference file"):
        read_preferences(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PreferenceDataError, match="empty.jsonl: holds no preference pairs"):
        read_preference_files([f, tmp_path / "empty.jsonl"])
    with pytest.raises(PreferenceDataError, match="is a folder"):
        read_preferences(tmp_path)


# ----------------------------------------------------------------------------------- numbers
def test_metrics_count_ties_half_and_break_down_by_source_and_env() -> None:
    chosen = [2.0, 1.0, 0.5, 3.0, 1.0]
    rejected = [1.0, 1.0, 0.7, 0.0, 2.0]  # right, tie, wrong, right, wrong
    sources = ["a", "a", "b", "b", "b"]
    envs = ["shop", "shop", "shop", "game24", "game24"]
    r = preference_metrics(chosen, rejected, sources, envs, bins=4)
    assert r["n"] == 5 and r["accuracy"] == pytest.approx(2.5 / 5)
    assert r["per_source"]["a"] == {"n": 2, "accuracy": 0.75, "mean_margin": 0.5}
    assert r["per_source"]["b"]["accuracy"] == pytest.approx(1 / 3)
    assert r["per_env"]["shop"]["n"] == 3 and r["per_env"]["shop"]["accuracy"] == pytest.approx(1.5 / 3)
    assert r["per_env"]["game24"]["per_source"] == {"b": {"n": 2, "accuracy": 0.5}}
    assert sum(r["histogram"]["chosen"]) == 5 and sum(r["histogram"]["rejected"]) == 5
    assert len(r["histogram"]["edges"]) == 5


def test_metrics_break_down_by_explorer_and_intent_source() -> None:
    chosen = [2.0, 1.0, 0.5, 3.0, 1.0]
    rejected = [1.0, 1.0, 0.7, 0.0, 2.0]  # right, tie, wrong, right, wrong
    r = preference_metrics(chosen, rejected, ["a"] * 5, ["shop"] * 5,
                           explorers=["random", "random", "llm", "llm", "llm"],
                           intent_sources=["template", "hindsight", "hindsight", "template", "template"])
    assert r["per_explorer"]["random"] == {"n": 2, "accuracy": 0.75, "mean_margin": 0.5}
    assert r["per_explorer"]["llm"]["n"] == 3 and r["per_explorer"]["llm"]["accuracy"] == pytest.approx(1 / 3)
    assert r["per_intent_source"]["hindsight"] == {"n": 2, "accuracy": 0.25, "mean_margin": pytest.approx(-0.1)}
    assert r["per_intent_source"]["template"]["accuracy"] == pytest.approx(2 / 3)
    assert "per_explorer" not in preference_metrics(chosen, rejected, ["a"] * 5, ["shop"] * 5)
    with pytest.raises(ValueError, match="2 explorers for 5 pairs"):
        preference_metrics(chosen, rejected, ["a"] * 5, ["shop"] * 5, explorers=["x", "y"])


def test_the_held_out_split_is_by_task_seeded_and_keeps_every_trajectory_on_one_side() -> None:
    from agentcritic.rm.pairs import pair_tasks
    from agentcritic.rm.stages import split_preferences

    prefs = shop_prefs(80, 0) + game24_prefs(20, 1)  # two intents per shop task
    # a pair whose rejected trajectory comes from another task joins the two tasks
    bridge = Preference("i want a red hat (bridge)", shop_episode("hat", "red", task="s0-t3"),
                        shop_episode("hat", "blue", task="s0-t30"), "cross_policy")
    prefs.append(bridge)
    train, held = split_preferences(prefs, 0.2, seed=0)
    assert len(train) + len(held) == len(prefs) and 12 <= len(held) <= 30

    def tasks(ps):
        return {k for p in ps for k in pair_tasks(p)}

    def trajectories(ps):
        return {(t.env, t.task_id, tuple(t.actions)) for p in ps for t in (p.chosen, p.rejected)}

    assert tasks(train).isdisjoint(tasks(held)) and tasks(held)
    assert trajectories(train).isdisjoint(trajectories(held))
    bridged = {"task:shop/s0-t3", "task:shop/s0-t30"}
    assert bridged <= tasks(train) or bridged <= tasks(held)
    # both intents of a held-out shop task are held out: an intent split would straddle them
    held_shop = {p.chosen.task_id for p in held if p.chosen.env == "shop"}
    assert held_shop and all(sum(p.chosen.task_id == t for p in held) >= 2 for t in held_shop)
    # seeded and deterministic: same pairs and seed, same split, whatever the order of the pairs
    assert split_preferences(prefs, 0.2, seed=0) == (train, held)
    shuffled = list(prefs)
    random.Random(3).shuffle(shuffled)
    assert {p.intent for p in split_preferences(shuffled, 0.2, seed=0)[1]} == {p.intent for p in held}
    assert {p.intent for p in split_preferences(prefs, 0.2, seed=1)[1]} != {p.intent for p in held}
    # pairs without a task id are grouped by their intent alone
    loose = [Preference(f"intent {k}", shop_episode("hat", "red", task=""), shop_episode("hat", "blue", task=""), "x")
             for k in range(10)]
    assert pair_tasks(loose[0]) == ("intent:intent 0",)
    assert len(split_preferences(loose, 0.3, seed=0)[1]) == 3


def test_an_empty_held_out_file_says_why_nothing_was_held_out(tmp_path) -> None:
    from agentcritic.rm.scoring_model import SETTINGS_FILE
    from agentcritic.rm.stages import EvalRMConfig, eval_rm

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / SETTINGS_FILE).write_text("{}")
    (tmp_path / "heldout_preferences.jsonl").write_text("")
    cfg = EvalRMConfig(model=str(tmp_path), data=[str(tmp_path / "heldout_preferences.jsonl")])
    with pytest.raises(PreferenceDataError, match="held no pairs out. The held-out split is by task"):
        eval_rm(cfg)


def test_report_json_is_strict_and_written_atomically(tmp_path) -> None:
    report = {"accuracy": float("nan"), "n": np.int64(3), "x": [np.float32(0.5), float("inf")]}
    path = write_report(report, tmp_path / "rm_eval.json")
    text = path.read_text()
    assert json.loads(text) == {"accuracy": None, "n": 3, "x": [0.5, None]}
    assert "NaN" not in text and not list(tmp_path.glob(".*tmp"))


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_evaluation_numbers_equal_a_direct_computation(tiny_bert) -> None:
    from agentcritic.rm import RewardModel

    rm = RewardModel(tiny_bert, max_length=64, seed=3)
    prefs = shop_prefs(10, 0) + game24_prefs(6, 1)
    report = evaluate_reward_model(rm, prefs, batch_size=4)
    c = rm.score([(p.intent, p.chosen) for p in prefs])
    r = rm.score([(p.intent, p.rejected) for p in prefs])
    assert report["n"] == 16
    assert report["accuracy"] == pytest.approx(float(np.mean((c > r) + 0.5 * (c == r))))
    assert report["mean_margin"] == pytest.approx(float(np.mean(c - r)), abs=1e-5)
    assert set(report["per_source"]) == {"truncate", "edit:option"}
    trunc = [i for i, p in enumerate(prefs) if p.source == "truncate"]
    assert report["per_source"]["truncate"]["n"] == len(trunc) == 11
    assert report["per_source"]["truncate"]["accuracy"] == pytest.approx(float(np.mean(c[trunc] > r[trunc])))
    assert set(report["per_env"]) == {"shop", "game24"}
    g = list(range(10, 16))
    assert report["per_env"]["game24"]["accuracy"] == pytest.approx(float(np.mean(c[g] > r[g])))
    assert sum(report["histogram"]["chosen"]) == 16
    # explicit env labels override the trajectories' env field
    labelled = evaluate_reward_model(rm, prefs, env_names=["a"] * 8 + ["b"] * 8)
    assert set(labelled["per_env"]) == {"a", "b"} and labelled["accuracy"] == report["accuracy"]
    with pytest.raises(ValueError, match="env_names has 2 names for 16"):
        evaluate_reward_model(rm, prefs, env_names=["a", "b"])
    # per explorer (who made the chosen trajectory) and per intent source, as computed directly
    def explorer(p):
        return p.chosen.meta.get("explorer") or p.chosen.meta.get("policy", "unknown").split("-")[0]

    assert set(report["per_explorer"]) == {explorer(p) for p in prefs} == {"random", "smollm2", "expert", "unknown"}
    for key, label_of in (("per_explorer", explorer),
                          ("per_intent_source", lambda p: p.chosen.meta.get("intent_source", "unknown"))):
        assert sum(row["n"] for row in report[key].values()) == 16
        for name, row in report[key].items():
            idx = [i for i, p in enumerate(prefs) if label_of(p) == name]
            assert row["n"] == len(idx) > 0
            assert row["accuracy"] == pytest.approx(float(np.mean((c[idx] > r[idx]) + 0.5 * (c[idx] == r[idx]))))
            assert row["mean_margin"] == pytest.approx(float(np.mean(c[idx] - r[idx])), abs=1e-5)
    assert set(report["per_intent_source"]) == {"template", "llm_rephrase", "hindsight", "unknown"}
    table = format_report(report)
    assert "edit:option" in table and "game24" in table and f"{report['accuracy']:.3f}" in table
    assert "smollm2" in table and "llm_rephrase" in table


def test_the_histograms_are_data_and_the_report_draws_them(tmp_path) -> None:
    from PIL import Image

    from agentcritic.report.plots import write_score_histograms

    report = preference_metrics([1.0, 2.0, 0.0], [0.0, 1.5, 0.5], ["a"] * 3, ["shop"] * 3, bins=4)
    hist = report["histogram"]
    assert len(hist["edges"]) == 5 and sum(hist["chosen"]) == sum(hist["rejected"]) == 3
    path = write_score_histograms(report, tmp_path / "rm_eval.png")
    assert path == tmp_path / "rm_eval.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    picture = Image.open(path)
    assert picture.size[0] > 300 and picture.size[1] > 200
    lo, hi = picture.convert("L").getextrema()
    assert hi - lo > 50  # bars were drawn, not a blank canvas
    with pytest.raises(ValueError, match="no histogram"):
        write_score_histograms({"n": 0}, tmp_path / "none.png")


def test_cross_domain_matrix_trains_on_one_env_and_tests_on_the_other(tiny_bert) -> None:
    from agentcritic.rm import RewardConfig, RewardModel

    built = []

    def make_model():
        built.append(1)
        return RewardModel(tiny_bert, max_length=64, seed=0)

    prefs = shop_prefs(40, 0) + game24_prefs(20, 1)
    cfg = RewardConfig(num_epochs=2, batch_size=8, learning_rate=3e-3, eval_fraction=0.25, progress=False)
    result = cross_domain_matrix(make_model, prefs, cfg)
    assert len(built) == 2  # one fresh model per training env
    assert result["envs"] == ["game24", "shop"] and result["n"] == {"shop": 40, "game24": 20}
    for a in result["envs"]:
        for b in result["envs"]:
            assert 0.0 <= result["accuracy"][a][b] <= 1.0
    # trained on shop's pairs (half of them 'truncate'), the model ranks finished shop episodes first
    assert result["accuracy"]["shop"]["shop"] >= 0.6
    with pytest.raises(PreferenceDataError, match="two or more envs"):
        cross_domain_matrix(make_model, shop_prefs(4, 0), cfg)
