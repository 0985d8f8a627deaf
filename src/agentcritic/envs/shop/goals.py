"""Goals (instructions) made from products, and the train/dev/test splits.

A goal is made from one *target* product, as in WebShop: its product type, 1–3 of its attributes,
one value of each of its option groups, and a price bound above its price (WebShop's rule: the
larger of two draws from the four next multiples of 10 above the price). It is phrased by one of
:data:`TEMPLATES`, e.g. "i need a hair extension which is natural looking and clip in, with honey
blonde color and 20 inch length, and price lower than 40.00 dollars".

Each goal also carries the search query an agent would write from it (:attr:`Goal.query`: type,
attributes and option values, without the price) and a distractor query (a sibling type of the
same category, or of the department where the category has one type, with the same attributes)
that the env offers among the admissible searches.

**Splits.** The catalogue's products are shuffled with the seed and cut into disjoint pools: 10%
for test, 5% for dev, the rest for train; a split's goals take their targets from its pool in
order (a pool smaller than the split is walked again, with other draws, so 100-product catalogues
still have 200 test goals). Test goals are made first, then dev, then train, and a goal whose
instruction repeats an earlier one (in any split) is skipped, so no instruction is in two splits.

**Findable by construction.** A candidate goal is kept only if searching its own query puts the
target among the results shown (the top :data:`~agentcritic.envs.shop.search.MAX_RESULTS`, five
pages); otherwise the next product of the pool is tried. The expert searches that query, pages to
the target (at most four ``Next >``), clicks it, picks at most two option values and buys: at most
nine steps, within ``max_steps`` = 15. Every other product that matches the goal (same type, the
attributes, the options, under budget) scores 1.0 too, as in WebShop.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from agentcritic.envs.shop.catalogue import Catalogue, Product, build_catalogue
from agentcritic.envs.shop.search import SearchIndex, build_index
from agentcritic.envs.shop.vocab import OPTION_PHRASES, PRODUCT_TYPES

SPLIT_COUNTS = {"test": 200, "dev": 80}
DEFAULT_TRAIN = 2000
POOL_FRACTIONS = {"test": 0.10, "dev": 0.05}
MAX_ATTRIBUTES = 3
_ATTEMPTS_PER_GOAL = 50

# {a} = article + type ("a hair extension"), {attrs} = "natural looking and clip in",
# {opts} = "honey blonde color and 20 inch length", {price} = "40.00".
TEMPLATES: tuple[str, ...] = (
    "i need {a} which is {attrs}, with {opts}, and price lower than {price} dollars",
    "i am looking for {a} that is {attrs} with {opts}, and price lower than {price} dollars",
    "find me {attrs_adj} {t} with {opts}, and price lower than {price} dollars",
    "i want to buy {a} that is {attrs}, {opts}, and price lower than {price} dollars",
    "looking for {a} that is {attrs} in {opts}, priced under {price} dollars",
    "i'd like {a}, {attrs}, with {opts}; my budget is lower than {price} dollars",
)


@dataclass(frozen=True)
class Goal:
    """What the shopper wants; made from the product ``asin`` (index ``product_index``)."""

    task_id: str
    asin: str
    product_index: int
    product_type: str
    category: tuple[str, ...]
    nouns: frozenset[str]
    attributes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]  # (group, value), one per option group of the target
    price_upper: float
    instruction: str
    query: str
    distractor_query: str
    template: int


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _article(name: str, plural: bool) -> str:
    if plural:
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def price_upper_for(price: float, rng: random.Random) -> float:
    """WebShop's budget rule: the larger of two draws from the next four multiples of 10."""
    first = math.floor(price / 10) + 1
    buckets = [10.0 * (first + i) for i in range(4)]
    return max(rng.sample(buckets, 2))


def make_goal(product: Product, rng: random.Random, task_id: str = "") -> Goal:
    """A goal whose target is ``product``, with draws from ``rng``."""
    ptype = product.type
    k = rng.randint(1, min(MAX_ATTRIBUTES, len(product.attributes)))
    attributes = tuple(rng.sample(product.attributes, k))
    options = tuple((group, rng.choice(values)) for group, values in product.options)
    price_upper = price_upper_for(product.price, rng)
    template = rng.randrange(len(TEMPLATES))
    opts = _join([OPTION_PHRASES[g].format(v=v) for g, v in options])
    instruction = TEMPLATES[template].format(
        a=_article(ptype.name, ptype.plural),
        t=ptype.name,
        attrs=_join(list(attributes)),
        attrs_adj=" ".join(attributes),
        opts=opts,
        price=f"{price_upper:.2f}",
    )
    values = " ".join(v for _, v in options)
    siblings = [t.name for t in PRODUCT_TYPES if t.category == ptype.category and t.name != ptype.name]
    if not siblings:  # a category with one type: take a type of the same department
        siblings = [t.name for t in PRODUCT_TYPES
                    if t.department == ptype.department and t.name != ptype.name]
    sibling = rng.choice(siblings)
    return Goal(
        task_id=task_id,
        asin=product.asin,
        product_index=product.index,
        product_type=ptype.name,
        category=product.category,
        nouns=product.nouns,
        attributes=attributes,
        options=options,
        price_upper=price_upper,
        instruction=instruction,
        query=f"{ptype.name} {' '.join(attributes)} {values}",
        distractor_query=f"{sibling} {' '.join(attributes)}",
        template=template,
    )


def split_pools(seed: int, num_products: int) -> dict[str, tuple[int, ...]]:
    """Disjoint product pools per split, from a seeded shuffle of the catalogue."""
    order = list(range(num_products))
    random.Random(f"shop-splits/{seed}").shuffle(order)
    n_test = math.ceil(num_products * POOL_FRACTIONS["test"])
    n_dev = math.ceil(num_products * POOL_FRACTIONS["dev"])
    return {
        "test": tuple(order[:n_test]),
        "dev": tuple(order[n_test:n_test + n_dev]),
        "train": tuple(order[n_test + n_dev:]),
    }


def is_findable(goal: Goal, index: SearchIndex) -> bool:
    """True when the goal's own query shows the target among the results (top MAX_RESULTS)."""
    return index.rank_of(goal.query, goal.product_index) is not None


def generate_goals(
    catalogue: Catalogue,
    index: SearchIndex,
    split: str,
    count: int,
    pool: tuple[int, ...],
    exclude: frozenset[str] = frozenset(),
) -> tuple[Goal, ...]:
    """``count`` findable goals with distinct instructions (none in ``exclude``) from ``pool``."""
    seen = set(exclude)
    goals: list[Goal] = []
    attempt = 0
    while len(goals) < count:
        if attempt >= _ATTEMPTS_PER_GOAL * count:
            raise RuntimeError(
                f"shop: could only make {len(goals)} of {count} findable {split} goals; "
                "use a larger num_products"
            )
        product = catalogue[pool[attempt % len(pool)]]
        rng = random.Random(f"{catalogue.seed}/{split}/{attempt}")
        attempt += 1
        goal = make_goal(product, rng, task_id=f"{split}-{len(goals)}")
        if goal.instruction in seen or not is_findable(goal, index):
            continue
        seen.add(goal.instruction)
        goals.append(goal)
    return tuple(goals)


@lru_cache(maxsize=16)
def split_goals(seed: int, num_products: int, split: str, num_train: int = DEFAULT_TRAIN) -> tuple[Goal, ...]:
    """The goals of ``split`` for catalogue ``(seed, num_products)``; cached.

    ``num_train`` only matters for ``split="train"`` (test and dev never depend on it).
    """
    if split != "train" and num_train != DEFAULT_TRAIN:
        return split_goals(seed, num_products, split)
    catalogue = build_catalogue(seed, num_products)
    index = build_index(seed, num_products)
    pools = split_pools(seed, num_products)
    earlier: list[Goal] = []
    for previous in ("test", "dev"):
        if previous == split:
            break
        earlier.extend(split_goals(seed, num_products, previous))
    count = num_train if split == "train" else SPLIT_COUNTS[split]
    exclude = frozenset(g.instruction for g in earlier)
    return generate_goals(catalogue, index, split, count, pools[split], exclude)
