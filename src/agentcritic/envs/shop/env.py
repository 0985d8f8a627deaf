"""``shop``: a WebShop-compatible shop (Yao et al., 2022) over a catalogue generated from a seed.

Decisions (see also the docstrings of :mod:`.catalogue`, :mod:`.search`, :mod:`.goals`,
:mod:`.reward` and :mod:`.pages`):

- **Constructor** ``ShopEnv(catalogue_seed=0, num_products=5000, num_train=2000, max_steps=15)``.
  The catalogue, its BM25 index and the goals are cached per ``(catalogue_seed, num_products)``,
  so building the env again (pickling, process pools) costs nothing after the first time in a
  process. Bad values (``num_products`` < 100, an unknown keyword) raise ``ValueError`` naming
  the argument.
- **Task ids** are ``"test-0"`` … ``"test-199"``, ``"dev-0"`` … ``"dev-79"``, ``"train-0"`` …
  (``num_train`` of them); the splits' target products and instructions are disjoint.
  ``reset(seed=…)`` changes nothing: a task id fixes the goal and the shop is deterministic.
- **Page flow and grammar** as in WebShop: search page → results (10 a page) → item page →
  description / features / reviews → ``Buy Now`` ends the episode with WebShop's reward.
  ``search[query]`` acts only on the search page; ``click[text]`` takes the text of a clickable of
  the current page (buttons, option values, product ASINs), case-insensitive. Anything else —
  unparsable text, another verb, a text not clickable here, a search off the search page, an empty
  query — is an invalid action: the observation says why and repeats the current page, the state
  is unchanged, the step counts.
- **Option clicks** select that value for its group (a later click in the same group replaces
  it); choices survive visits to the sub-pages and are cleared on leaving the item.
- **Admissible actions**: every clickable of the page as ``click[...]``; on the search page a
  small set of ``search[...]`` candidates, sorted: the goal's query (type + attributes + option
  values — the expert's query, so a chooser can succeed), the type with the attributes, the type
  alone, and a distractor (a sibling type of the same category with the goal's attributes). Any
  other query typed by a generating agent is valid too.
- **Expert** (knows the target): searches the goal's query, pages to the target (``Next >`` /
  ``< Prev``), clicks it, clicks each goal option value not yet selected, buys; from a wrong page
  it goes back (``< Prev`` / ``Back to Search``). Goals are only kept when that query shows the
  target (see :mod:`.goals`), so it reaches reward 1.0 in at most nine steps.
- **Info**: ``page`` (search, results, item, description, features, reviews, done),
  ``page_number`` and ``query`` on results, ``asin`` on an item; after ``Buy Now`` also
  ``purchased_asin``, ``chosen_options``, ``price`` (what was paid; a custom target may use it)
  and ``reward_details`` (the parts of WebShop's formula).
- **Reward-model text**: every page repeats the instruction, as WebShop's do; ``rm_observation``
  drops that echo, since the intent heads the rendering (and a refined intent must not be
  contradicted by the exploring one).
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

from agentcritic.envs.base import EnvError, StepOutcome, TextEnv
from agentcritic.envs.shop.catalogue import DEFAULT_PRODUCTS, MIN_PRODUCTS, build_catalogue
from agentcritic.envs.shop.goals import DEFAULT_TRAIN, SPLIT_COUNTS, Goal, split_goals
from agentcritic.envs.shop.pages import (
    BACK,
    BUY,
    NEXT,
    PREV,
    RESULTS_PER_PAGE,
    SEP,
    SUB_PAGES,
    Page,
    done_page,
    item_page,
    num_pages,
    results_page,
    search_page,
    sub_page,
)
from agentcritic.envs.shop.reward import purchase_reward
from agentcritic.envs.shop.search import build_index
from agentcritic.types import Trajectory

_ACTION = re.compile(r"^\s*([A-Za-z_]+)\s*\[(.*)\]\s*$", re.DOTALL)
_ECHO = re.compile(r"(?:WebShop \[SEP\] )?Instruction: \[SEP\] .*? \[SEP\] ")
_OPTIONS = ("catalogue_seed", "num_products", "num_train", "max_steps")
_GRAMMAR = "write search[query] on the search page or click[text] with the text of a clickable"


def _int_arg(name: str, value: Any, minimum: int | None = None) -> int:
    try:
        number = operator.index(value)  # ints and numpy integers; not floats or strings
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or (minimum is not None and number < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise EnvError(f"shop: {name} must be an integer{bound} (got {value!r}); correct env_kwargs.{name}")
    return int(number)


class ShopEnv(TextEnv):
    """WebShop's page flow, grammar and reward over a generated catalogue. See the module doc."""

    name = "shop"

    def __init__(
        self,
        catalogue_seed: int = 0,
        num_products: int = DEFAULT_PRODUCTS,
        num_train: int = DEFAULT_TRAIN,
        max_steps: int = 15,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise EnvError(
                f"shop: unknown option(s) {sorted(unknown)}; valid options are {list(_OPTIONS)}. "
                "Correct or remove it in env_kwargs (in the --config file or a --set)"
            )
        catalogue_seed = _int_arg("catalogue_seed", catalogue_seed)
        num_products = _int_arg("num_products", num_products, MIN_PRODUCTS)
        num_train = _int_arg("num_train", num_train, 1)
        max_steps = _int_arg("max_steps", max_steps, 1)
        super().__init__(max_steps=max_steps, catalogue_seed=catalogue_seed, num_products=num_products,
                         num_train=num_train)
        self.catalogue_seed = catalogue_seed
        self.num_products = num_products
        self.num_train = num_train
        self.catalogue = build_catalogue(catalogue_seed, num_products)
        self.index = build_index(catalogue_seed, num_products)
        self._counts = {"train": num_train, **SPLIT_COUNTS}
        self._ids = {split: [f"{split}-{i}" for i in range(n)] for split, n in self._counts.items()}
        self.goal: Goal | None = None
        self._clear_state()

    # ------------------------------------------------------------------ state
    def _clear_state(self) -> None:
        self._kind = "search"  # search, results, item, description, features, reviews, done
        self._query = ""
        self._results: tuple[int, ...] = ()
        self._page_no = 0
        self._item: int | None = None
        self._chosen: dict[str, str] = {}
        self._purchase: dict[str, Any] | None = None
        self._page: Page | None = None

    def page(self) -> Page:
        """The current page (rendered once per state)."""
        if self._page is None:
            self._page = self._render()
        return self._page

    def _render(self) -> Page:
        instruction = self.instruction if self.goal is None else self.goal.instruction
        if self._kind == "search":
            return search_page(instruction)
        if self._kind == "results":
            return results_page(instruction, self.catalogue, self._results, self._page_no)
        assert self._item is not None
        product = self.catalogue[self._item]
        if self._kind == "item":
            return item_page(instruction, product, self._chosen)
        if self._kind == "done":
            return done_page(product, self._chosen)
        return sub_page(instruction, self.catalogue, product, self._kind)

    # ------------------------------------------------------------------ hooks
    def _task_ids(self, split: str) -> list[str]:
        return self._ids[split]

    def is_task_id(self, task_id: str) -> bool:
        # Parsed rather than looked up: base.reset checks the id on every reset.
        split, _, number = str(task_id).partition("-")
        if split not in self._counts or not number.isdigit() or str(int(number)) != number:
            return False
        return int(number) < self._counts[split]

    def goal_for(self, task_id: str) -> Goal:
        """The goal of a task id (generated on first use, then cached)."""
        split, _, number = self.check_task_id(task_id).partition("-")
        return split_goals(self.catalogue_seed, self.num_products, split, self.num_train)[int(number)]

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        self.goal = self.goal_for(task_id)
        self._clear_state()
        return self.page().text, self.goal.instruction

    def _step(self, action: str) -> StepOutcome:
        match = _ACTION.match(action)
        if not match:
            return self._invalid(f"cannot read {action[:80]!r}; {_GRAMMAR}")
        verb, arg = match.group(1).lower(), " ".join(match.group(2).split())
        if verb == "search":
            if self._kind != "search":
                return self._invalid(f"search is only available on the search page; click[{BACK}] first")
            if not arg:
                return self._invalid("the search query is empty")
            self._query, self._results, self._page_no = arg, self.index.search(arg), 0
            return self._moved("results")
        if verb != "click":
            return self._invalid(f"unknown action {verb!r}; {_GRAMMAR}")
        clickables = {c.lower(): c for c in self.page().clickables}
        target = clickables.get(arg.lower())
        if target is None:
            return self._invalid(f"{arg[:80]!r} is not clickable on this page")
        return self._click(target)

    def _click(self, target: str) -> StepOutcome:
        if target == BACK:
            self._query, self._results, self._page_no = "", (), 0
            self._item, self._chosen = None, {}
            return self._moved("search")
        if self._kind == "results":
            if target == NEXT:
                self._page_no += 1
            elif target == PREV:
                self._page_no -= 1
            else:
                product = self.catalogue.find(target)
                assert product is not None
                self._item, self._chosen = product.index, {}
                return self._moved("item")
            return self._moved("results")
        if self._kind == "item":
            if target == PREV:
                self._item, self._chosen = None, {}
                return self._moved("results")
            if target.lower() in SUB_PAGES:
                return self._moved(SUB_PAGES[target.lower()])
            if target == BUY:
                return self._buy()
            assert self._item is not None
            for group, value in self.catalogue[self._item].option_values():
                if value == target:
                    self._chosen[group] = value
            return self._moved("item")
        # description / features / reviews: the only buttons left are "< Prev" (and Back, above)
        return self._moved("item")

    def _buy(self) -> StepOutcome:
        assert self._item is not None and self.goal is not None
        product = self.catalogue[self._item]
        details = purchase_reward(self.goal, product, self._chosen)
        self._purchase = {
            "purchased_asin": product.asin,
            "chosen_options": dict(self._chosen),
            "price": product.price,
            "reward_details": details.to_dict(),
        }
        self._kind, self._page = "done", None
        return StepOutcome(
            observation=self.page().text,
            score=details.reward,
            done=True,
            success=math.isclose(details.reward, 1.0),
        )

    def _moved(self, kind: str) -> StepOutcome:
        self._kind, self._page = kind, None
        return StepOutcome(observation=self.page().text, score=0.0, done=False)

    def _invalid(self, reason: str) -> StepOutcome:
        return StepOutcome(observation=f"Invalid action: {reason}.{SEP}{self.page().text}", score=0.0,
                           done=False, valid=False)

    def search_candidates(self) -> list[str]:
        """The queries offered as admissible ``search[...]`` actions (see the module doc)."""
        assert self.goal is not None
        goal = self.goal
        queries = {
            goal.query,
            f"{goal.product_type} {' '.join(goal.attributes)}",
            goal.product_type,
            goal.distractor_query,
        }
        return sorted(queries)

    def _admissible(self) -> list[str] | None:
        if self._kind == "done":
            return []
        if self._kind == "search":
            return [f"search[{q}]" for q in self.search_candidates()]
        return [f"click[{c}]" for c in self.page().clickables]

    def _expert(self) -> str | None:
        goal = self.goal
        if goal is None or self._kind == "done":
            return None
        target = goal.product_index
        if self._kind == "search":
            return f"search[{goal.query}]"
        if self._kind == "results":
            if target not in self._results:
                return f"click[{BACK}]"
            page = self._results.index(target) // RESULTS_PER_PAGE
            if page == self._page_no:
                return f"click[{goal.asin}]"
            return f"click[{NEXT}]" if page > self._page_no else f"click[{PREV}]"
        if self._kind == "item":
            if self._item != target:
                return f"click[{PREV}]"
            for group, value in goal.options:
                if self._chosen.get(group) != value:
                    return f"click[{value}]"
            return f"click[{BUY}]"
        return f"click[{PREV}]"

    def _extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"page": self._kind}
        if self._kind == "results":
            info["page_number"] = self._page_no + 1
            info["num_pages"] = num_pages(len(self._results))
            info["query"] = self._query
        if self._item is not None and self._kind != "done":
            info["asin"] = self.catalogue[self._item].asin
        if self._purchase is not None:
            info.update(self._purchase)
        return info

    def trajectory_meta(self) -> dict[str, Any]:
        meta = super().trajectory_meta()
        if self.goal is not None:
            meta["target_asin"] = self.goal.asin
        return meta

    # ------------------------------------------------------------------ reward-model text
    @classmethod
    def rm_observation(cls, observation: str, last: bool) -> str:
        """The page without the instruction that every page echoes."""
        return _ECHO.sub("", observation, count=1)
