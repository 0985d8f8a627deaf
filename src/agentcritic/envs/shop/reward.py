"""WebShop's reward for a purchase, as pure functions.

WebShop (Yao et al., 2022; ``web_agent_site/engine/goal.py``, ``get_reward``) scores a purchase as

    reward = r_type × (|goal attrs ∩ item attrs| + |goal opts ∩ chosen opts| + [price ≤ budget])
                     / (|goal attrs| + |goal opts| + 1)

and ``r_type`` comes from ``get_type_reward``, kept here step for step:

    query_match    = the bought product is of the goal's product type (WebShop: the same search
                     query the product was scraped under; here the product type is that query)
    category_match = the two category paths share at least 2 components (department and category)
    title_score    = |goal title nouns ∩ bought title nouns| / |goal title nouns|   (0.2 if none)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2): r_type = 0.5
    if title_score < 0.1: r_type = 0.1
    if title_score == 0:  r_type = 0.0

So a product of the goal's type always has ``r_type`` 1 (it shares the type's nouns, at least 1 of
at most 6, so ``title_score ≥ 1/6``); another type scores 1, 0.5 or 0 depending on shared nouns and
category, as in WebShop (e.g. coffee beans bought for a "brand coffee mug, stainless steel" goal
share 1 of its 5 title nouns in another department: 0.5; with a 4-noun mug title, 1/4 > 0.2: 1.0;
a shampoo bought for a hair dryer shares the category but no noun: 0). The 0.1 step
needs a goal title with more than ten nouns, so the generated titles (at most six) never reach it;
the rule is kept for catalogues that do. The title nouns are the brand, the product-type words and
the material words (WebShop tags nouns with spaCy; the generator here knows them).

Where WebShop matches attributes and options by fuzzy string similarity (and attributes also by
occurrence in the title and bullets), a generated catalogue has exact values, so both are matched
exactly after lower-casing and trimming. As in WebShop, a goal option counts as matched when its
value is among the chosen option values (whatever their group).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RewardBreakdown:
    """The parts of one purchase's reward, for logs and ``info``."""

    r_type: float
    attribute_matches: int
    num_attributes: int
    option_matches: int
    num_options: int
    price_ok: bool
    reward: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


def type_reward(
    *,
    goal_type: str,
    item_type: str,
    goal_category: Iterable[str],
    item_category: Iterable[str],
    goal_nouns: Collection[str],
    item_nouns: Collection[str],
) -> float:
    """WebShop's ``r_type``: 1, 0.5, 0.1 or 0 from product type, category and title nouns."""
    query_match = _norm(goal_type) == _norm(item_type)
    category_match = len({_norm(c) for c in goal_category} & {_norm(c) for c in item_category}) >= 2
    goal_set = {_norm(n) for n in goal_nouns}
    item_set = {_norm(n) for n in item_nouns}
    title_score = len(goal_set & item_set) / len(goal_set) if goal_set else 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type


def shop_reward(
    *,
    r_type: float,
    goal_attributes: Iterable[str],
    item_attributes: Iterable[str],
    goal_options: Iterable[str],
    chosen_options: Iterable[str],
    price_upper: float,
    price: float,
) -> RewardBreakdown:
    """WebShop's reward formula. Options are given as values (``"large"``, ``"navy blue"``)."""
    goal_attrs = [_norm(a) for a in goal_attributes]
    item_attrs = {_norm(a) for a in item_attributes}
    goal_opts = [_norm(o) for o in goal_options]
    chosen = {_norm(o) for o in chosen_options}
    attr_hits = sum(a in item_attrs for a in goal_attrs)
    opt_hits = sum(o in chosen for o in goal_opts)
    price_ok = float(price) <= float(price_upper)
    total = (attr_hits + opt_hits + int(price_ok)) / (len(goal_attrs) + len(goal_opts) + 1)
    return RewardBreakdown(
        r_type=float(r_type),
        attribute_matches=attr_hits,
        num_attributes=len(goal_attrs),
        option_matches=opt_hits,
        num_options=len(goal_opts),
        price_ok=price_ok,
        reward=float(r_type) * total,
    )


def purchase_reward(goal: Any, product: Any, chosen_options: Mapping[str, str]) -> RewardBreakdown:
    """The reward of buying ``product`` with ``chosen_options`` (group → value) against ``goal``.

    ``goal`` is a :class:`~agentcritic.envs.shop.goals.Goal`, ``product`` a
    :class:`~agentcritic.envs.shop.catalogue.Product`; both are only read.
    """
    r_type = type_reward(
        goal_type=goal.product_type,
        item_type=product.product_type,
        goal_category=goal.category,
        item_category=product.category,
        goal_nouns=goal.nouns,
        item_nouns=product.nouns,
    )
    return shop_reward(
        r_type=r_type,
        goal_attributes=goal.attributes,
        item_attributes=product.attributes,
        goal_options=[value for _, value in goal.options],
        chosen_options=chosen_options.values(),
        price_upper=goal.price_upper,
        price=product.price,
    )
