"""The ``shop`` env: WebShop's reward formula, page flow, invalid actions, expert, catalogue."""

from __future__ import annotations

import pickle
import time

import pytest

from agentcritic import envs
from agentcritic.envs.shop.catalogue import build_catalogue
from agentcritic.envs.shop.env import ShopEnv
from agentcritic.envs.shop.goals import split_goals
from agentcritic.envs.shop.pages import BUTTONS
from agentcritic.envs.shop.reward import purchase_reward, shop_reward, type_reward
from agentcritic.envs.shop.search import MAX_RESULTS, build_index
from agentcritic.envs.shop.vocab import OPTION_VALUES, PRODUCT_TYPES
from agentcritic.rendering import render
from agentcritic.types import Step, Trajectory


@pytest.fixture(scope="module")
def env() -> ShopEnv:
    return envs.make("shop")


def _run_expert(env: ShopEnv, task_id: str) -> dict:
    env.reset(task_id=task_id)
    while True:
        action = env.expert_action()
        assert action is not None
        assert action in env.admissible_actions(), f"{task_id}: expert action {action} is not admissible"
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return info


# ------------------------------------------------------------------------------------- reward
def _reward(**overrides) -> float:
    args = dict(
        r_type=1.0,
        goal_attributes=["natural looking", "clip in", "heat resistant"],
        item_attributes=["natural looking", "clip in", "heat resistant", "vegan"],
        goal_options=["honey blonde", "20 inch"],
        chosen_options=["honey blonde", "20 inch"],
        price_upper=40.0,
        price=35.99,
    )
    args.update(overrides)
    return shop_reward(**args).reward


def test_reward_full_match_is_one() -> None:
    assert _reward() == 1.0


def test_reward_one_wrong_option_value() -> None:
    # 3 attributes + 2 options + price: (3 + 1 + 1) / 6
    assert _reward(chosen_options=["honey blonde", "18 inch"]) == pytest.approx(5 / 6)
    # an option not chosen at all counts the same as a wrong one
    assert _reward(chosen_options=["honey blonde"]) == pytest.approx(5 / 6)


def test_reward_price_over_budget_and_missing_attribute() -> None:
    assert _reward(price=40.01) == pytest.approx(5 / 6)
    assert _reward(price=40.0) == 1.0  # "lower than" is checked as price <= budget, as WebShop does
    assert _reward(item_attributes=["natural looking"], price=99.0) == pytest.approx((1 + 2 + 0) / 6)


def test_reward_is_scaled_by_r_type() -> None:
    assert _reward(r_type=0.5) == pytest.approx(0.5)
    assert _reward(r_type=0.5, chosen_options=[]) == pytest.approx(0.5 * 4 / 6)
    assert _reward(r_type=0.0) == 0.0
    # matching is case- and space-insensitive
    assert _reward(chosen_options=["Honey  Blonde", "20 INCH"]) == 1.0


def _r_type(goal_nouns, item_nouns, *, same_type=False, goal_cat=("beauty", "hair care", "wig"),
            item_cat=("electronics", "audio", "headphones")) -> float:
    return type_reward(
        goal_type="wig", item_type="wig" if same_type else "other",
        goal_category=goal_cat, item_category=item_cat,
        goal_nouns=goal_nouns, item_nouns=item_nouns,
    )


def test_type_reward_follows_webshop_scheme() -> None:
    goal = ["acme", "hair", "extension", "synthetic", "fiber", "x"]
    assert _r_type(goal, ["zed", "hair", "extension"], same_type=True) == 1.0
    # another type: title overlap above 0.2 still counts as a match (WebShop's leniency)
    assert _r_type(goal, ["hair", "extension"]) == 1.0  # 2/6
    # another department, overlap 1/6 (between 0.1 and 0.2): no match -> 0.5
    assert _r_type(goal, ["hair", "dryer"]) == 0.5
    # same department and category (2 shared path parts) rescues a 1/6 overlap
    assert _r_type(goal, ["hair", "dryer"], item_cat=("beauty", "hair care", "hair dryer")) == 1.0
    # overlap below 0.1 -> 0.1; none -> 0, even within the same category
    long_goal = [f"n{i}" for i in range(11)]
    assert _r_type(long_goal, ["n0"]) == 0.1
    assert _r_type(goal, ["shampoo"], item_cat=("beauty", "hair care", "shampoo")) == 0.0
    assert _r_type([], ["anything"]) == 0.5  # WebShop: no goal nouns -> title score 0.2


def test_purchase_reward_against_a_real_goal(env: ShopEnv) -> None:
    goal = env.goal_for("test-0")
    target = env.catalogue[goal.product_index]
    chosen = dict(goal.options)
    assert purchase_reward(goal, target, chosen).reward == 1.0
    group, value = goal.options[0]
    other = next(v for g, vs in target.options if g == group for v in vs if v != value)
    n = len(goal.attributes) + len(goal.options) + 1
    details = purchase_reward(goal, target, {**chosen, group: other})
    assert details.reward == pytest.approx((n - 1) / n)
    assert details.option_matches == len(goal.options) - 1
    # a product of an unrelated department with no shared title noun scores 0
    unrelated = next(p for p in env.catalogue.products
                     if p.category[0] != target.category[0] and not (p.nouns & goal.nouns))
    assert purchase_reward(goal, unrelated, {}).reward == 0.0


# ------------------------------------------------------------------------------------- pages
def test_search_page_and_admissible_searches(env: ShopEnv) -> None:
    obs, info = env.reset(task_id="test-1")
    goal = env.goal
    assert obs == f"WebShop [SEP] Instruction: [SEP] {goal.instruction} [SEP] Search"
    admissible = info["admissible_actions"]
    assert all(a.startswith("search[") for a in admissible)
    assert f"search[{goal.query}]" in admissible and f"search[{goal.product_type}]" in admissible
    queries = [a[len("search["):-1] for a in admissible]
    assert queries == sorted(queries) and 3 <= len(queries) <= 4
    assert goal.distractor_query in queries
    assert info["page"] == "search"


def test_results_paging_next_and_prev(env: ShopEnv) -> None:
    env.reset(task_id="test-0")
    goal = env.goal
    obs, _, _, _, info = env.step(f"search[{goal.product_type}]")
    assert info["page"] == "results" and info["page_number"] == 1 and info["num_pages"] == 5
    assert "Page 1 (Total results: 50)" in obs and "Next >" in obs and "< Prev" not in obs
    page1 = [a for a in info["admissible_actions"] if a.startswith("click[B0")]
    assert len(page1) == 10
    assert info["admissible_actions"][:2] == ["click[Back to Search]", "click[Next >]"]
    obs, _, _, _, info = env.step("click[next >]")  # case-insensitive
    assert info["page_number"] == 2 and "Page 2 (Total results: 50)" in obs and "< Prev" in obs
    page2 = [a for a in info["admissible_actions"] if a.startswith("click[B0")]
    assert len(page2) == 10 and not set(page1) & set(page2)
    for _ in range(3):
        obs, _, _, _, info = env.step("click[Next >]")
    assert info["page_number"] == 5 and "Next >" not in obs
    assert "click[Next >]" not in info["admissible_actions"]
    for _ in range(4):
        obs, _, _, _, info = env.step("click[< Prev]")
    assert info["page_number"] == 1
    assert [a for a in info["admissible_actions"] if a.startswith("click[B0")] == page1


def test_item_description_prev_keeps_options_and_back_to_search(env: ShopEnv) -> None:
    env.reset(task_id="test-0")
    goal = env.goal
    env.step(f"search[{goal.query}]")
    asin = next(a for a in env.admissible_actions() if a.startswith("click[B0"))[6:-1]
    obs, _, _, _, info = env.step(f"click[{asin.lower()}]")  # product ids are case-insensitive
    product = env.catalogue.find(asin)
    assert info["page"] == "item" and info["asin"] == asin
    assert product.title in obs and f"Price: ${product.price:.2f}" in obs
    for button in ("Back to Search", "< Prev", "Description", "Features", "Reviews", "Buy Now"):
        assert f"click[{button}]" in info["admissible_actions"]
    group, values = product.options[0]
    assert all(f"click[{v}]" in info["admissible_actions"] for v in values)
    obs, _, _, _, info = env.step(f"click[{values[-1]}]")
    assert f"Selected: {group}: {values[-1]}" in obs
    obs, _, _, _, info = env.step("click[Description]")
    assert info["page"] == "description" and env.catalogue.description(product.index) in obs
    assert info["admissible_actions"] == ["click[Back to Search]", "click[< Prev]"]
    obs, _, _, _, info = env.step("click[< Prev]")
    assert info["page"] == "item" and f"Selected: {group}: {values[-1]}" in obs
    obs, _, _, _, info = env.step("click[Features]")
    assert all(f in obs for f in product.features)
    env.step("click[< Prev]")
    obs, _, _, _, info = env.step("click[Reviews]")
    assert "out of 5 stars" in obs
    env.step("click[< Prev]")
    obs, _, _, _, info = env.step("click[< Prev]")  # item -> the results page it came from
    assert info["page"] == "results" and info["page_number"] == 1
    obs, _, _, _, info = env.step("click[Back to Search]")
    assert info["page"] == "search" and obs.endswith("[SEP] Search") and not info["invalid"]


def test_buy_ends_with_reward_price_and_no_leak(env: ShopEnv) -> None:
    info = _run_expert(env, "test-5")
    goal = env.goal
    product = env.catalogue[goal.product_index]
    assert info["page"] == "done" and info["success"] and info["score"] == 1.0
    assert info["purchased_asin"] == goal.asin and info["price"] == product.price
    assert info["chosen_options"] == dict(goal.options)
    assert info["reward_details"]["reward"] == 1.0 and info["admissible_actions"] == []
    last = env.last_observation
    assert last.startswith("Thank you for shopping with us!") and goal.asin in last
    assert "score" not in last.lower() and "reward" not in last.lower()


def test_buy_with_wrong_option_gives_partial_reward(env: ShopEnv) -> None:
    env.reset(task_id="test-2")
    goal = env.goal
    target = env.catalogue[goal.product_index]
    group, value = goal.options[-1]
    wrong = next(v for g, vs in target.options if g == group for v in vs if v != value)
    actions = []
    while True:
        action = env.expert_action()
        if action == "click[Buy Now]":
            break
        actions.append(action)
        env.step(action)
    env.step(f"click[{wrong}]")  # replaces the right value in the same group
    _, reward, terminated, _, info = env.step("click[Buy Now]")
    n = len(goal.attributes) + len(goal.options) + 1
    assert terminated and not info["success"]
    assert reward == pytest.approx((n - 1) / n) and info["chosen_options"][group] == wrong


# ------------------------------------------------------------------------------ invalid actions
@pytest.mark.parametrize(
    "action", ["clack[x]", "click[nonexistent]", "search[hair dryer]", "buy now", "click[]"]
)
def test_invalid_actions_are_observations(env: ShopEnv, action: str) -> None:
    env.reset(task_id="test-0")
    env.step(f"search[{env.goal.query}]")
    env.step(env.expert_action())  # on the target's item page now
    before_page, before_adm = env.page(), env.admissible_actions()
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs.startswith("Invalid action:") and before_page.text in obs
    assert info["invalid"] is True and reward == 0.0 and not terminated and not truncated
    assert env.page() == before_page and env.admissible_actions() == before_adm
    assert len(env.actions) == 3 and env.invalid_actions == 1


def test_search_page_rejects_clicks_and_empty_query(env: ShopEnv) -> None:
    env.reset(task_id="test-0")
    for action in ("click[Back to Search]", "search[   ]", "click[Buy Now]"):
        obs, _, _, _, info = env.step(action)
        assert info["invalid"] and info["page"] == "search"
    # a query nobody offered is still a valid search
    obs, _, _, _, info = env.step("search[zzzz qqqq]")
    assert not info["invalid"] and "Total results: 0" in obs
    assert info["admissible_actions"] == ["click[Back to Search]"]


# ------------------------------------------------------------------------------------- expert
@pytest.mark.parametrize("split", ["test", "dev"])
def test_expert_solves_every_goal(env: ShopEnv, split: str) -> None:
    failures = []
    for task_id in env.task_ids(split):
        info = _run_expert(env, task_id)
        if not (info["success"] and info["score"] == 1.0 and info["steps"] <= 9):
            failures.append((task_id, info["score"], env.actions))
    assert not failures, failures[:3]


def test_expert_recovers_from_a_wrong_turn(env: ShopEnv) -> None:
    env.reset(task_id="test-7")
    goal = env.goal
    env.step(f"search[{goal.distractor_query}]")
    other = next(a for a in env.admissible_actions() if a.startswith("click[B0") and goal.asin not in a)
    env.step(other)
    env.step("click[Reviews]")
    while not (env.terminated or env.truncated):
        env.step(env.expert_action())
    assert env.success and env.score == 1.0


def test_goals_are_findable_and_splits_disjoint(env: ShopEnv) -> None:
    goals = {s: split_goals(0, 5000, s) for s in ("test", "dev", "train")}
    assert [len(goals[s]) for s in ("test", "dev", "train")] == [200, 80, 2000]
    assert env.task_ids("test")[:2] == ["test-0", "test-1"] and len(env.task_ids("train")) == 2000
    instructions = [g.instruction for s in goals for g in goals[s]]
    assert len(set(instructions)) == len(instructions)
    targets = {s: {g.product_index for g in goals[s]} for s in goals}
    assert not targets["test"] & targets["dev"] and not targets["test"] & targets["train"]
    assert not targets["dev"] & targets["train"]
    for g in goals["test"] + goals["dev"]:
        assert env.index.rank_of(g.query, g.product_index) < MAX_RESULTS
        product = env.catalogue[g.product_index]
        assert g.price_upper > product.price and set(g.attributes) <= set(product.attributes)
        assert 1 <= len(g.attributes) <= 3 and len(g.options) == len(product.options)
        assert g.instruction.endswith(f"{g.price_upper:.2f} dollars") and "[" not in g.instruction


# ------------------------------------------------------------------------------------- catalogue
def test_catalogue_is_deterministic_per_seed() -> None:
    fresh = build_catalogue.__wrapped__  # bypass the cache: really generate twice
    a, b, c = fresh(7, 300), fresh(7, 300), fresh(8, 300)
    assert a.products == b.products
    assert [p.asin for p in a.products] != [p.asin for p in c.products]
    assert sum(p.title == q.title for p, q in zip(a.products, c.products)) < 10
    assert fresh(7, 1200).products[:300] == a.products  # catalogues of one seed nest
    assert len({p.asin for p in fresh(7, 1200).products}) == 1200


def test_catalogue_content_is_well_formed(env: ShopEnv) -> None:
    types = {p.type_index for p in env.catalogue.products}
    assert len(types) == len(PRODUCT_TYPES)
    for p in env.catalogue.products[:500]:
        assert p.asin.startswith("B0") and len(p.asin) == 10
        assert 3 <= len(p.attributes) <= 6 and len(set(p.attributes)) == len(p.attributes)
        low, high = p.type.price
        assert low <= p.price <= high + 1 and p.options and all(len(v) >= 3 for _, v in p.options)
        assert p.type.name.lower() in p.title.lower()
    # any two products of one type give r_type 1 (they share the type's title nouns)
    by_type: dict[int, list] = {}
    for p in env.catalogue.products:
        by_type.setdefault(p.type_index, []).append(p)
    for same in by_type.values():
        a, b = same[0], same[-1]
        assert type_reward(goal_type=a.product_type, item_type=b.product_type, goal_category=a.category,
                           item_category=b.category, goal_nouns=a.nouns, item_nouns=b.nouns) == 1.0


def test_vocab_rules_the_pages_rely_on() -> None:
    for t in PRODUCT_TYPES:
        values = [v for _, key in t.options for v in OPTION_VALUES[key]]
        assert len(values) == len(set(values)), t.name  # an option click names one group
        assert not {v.lower() for v in values} & BUTTONS
        assert all("[" not in v and "]" not in v and v == v.lower() for v in values)


def test_bad_constructor_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="num_products"):
        ShopEnv(num_products=99)
    with pytest.raises(ValueError, match="colour"):
        ShopEnv(colour="red")
    with pytest.raises(ValueError, match="num_train"):
        ShopEnv(num_train=0)
    with pytest.raises(ValueError, match="catalogue_seed"):
        ShopEnv(catalogue_seed="zero")


def test_small_catalogue_and_other_seed_work() -> None:
    env = ShopEnv(catalogue_seed=3, num_products=100, num_train=50)
    assert len(env.task_ids("test")) == 200 and len(env.task_ids("train")) == 50
    for task_id in env.task_ids("test")[:20] + env.task_ids("train")[:5]:
        info = _run_expert(env, task_id)
        assert info["success"] and info["score"] == 1.0
    clone = pickle.loads(pickle.dumps(env))
    assert clone.num_products == 100 and clone.last_observation == env.last_observation


def test_reward_model_text_drops_the_instruction_echo(env: ShopEnv) -> None:
    obs, _ = env.reset(task_id="test-0")
    steps = []
    for _ in range(3):
        action = env.expert_action()
        o, r, _, _, _ = env.step(action)
        steps.append(Step(action=action, observation=o, reward=r))
    traj = Trajectory(env="shop", task_id="test-0", instruction="my refined intent", steps=steps,
                      meta={"first_observation": obs})
    text = render("my refined intent", traj)
    assert text.startswith("Instruction: my refined intent\nObservation: Search\n")
    assert env.goal.instruction not in text
    assert "Back to Search [SEP] Page 1" in text and "Price: $" in text


@pytest.mark.slow
def test_fifty_thousand_products_build_and_search() -> None:
    t0 = time.perf_counter()
    index = build_index(11, 50_000)
    built = time.perf_counter() - t0
    assert len(index.catalogue) == 50_000 and len({p.asin for p in index.catalogue.products}) == 50_000
    assert built < 60, f"50k catalogue + index took {built:.1f}s"
    goals = split_goals(11, 50_000, "test")
    assert len(goals) == 200
    for g in goals:
        assert index.rank_of(g.query, g.product_index) is not None
    env = ShopEnv(catalogue_seed=11, num_products=50_000)
    for task_id in env.task_ids("test")[:20]:
        assert _run_expert(env, task_id)["score"] == 1.0
