"""What each env knows about the outcome of a trajectory: the grounded intent, and a judge for it.

A :class:`Grounding` answers, for one env:

- :meth:`~Grounding.outcome`: the intent a trajectory verifiably fulfilled, as a template text, the
  facts a re-phrase must keep, and a ``goal`` (JSON data) to judge other trajectories against —
  or ``None`` where the env cannot tell (nothing bought, puzzle not solved, task not finished);
- :meth:`~Grounding.reward_of`: the env's reward of a *recorded* trajectory against a goal;
- :meth:`~Grounding.judge`: the same, by re-executing the actions in the env (verification);
- :meth:`~Grounding.as_goal`: a trajectory posed as the goal's task where the env can pose the same
  steps as another task (game24: the same puzzle with another target), so both sides of a
  ``cross_policy`` pair read the intent's task; elsewhere the trajectory itself;
- :meth:`~Grounding.decisive` / :meth:`~Grounding.alternatives` / :meth:`~Grounding.repair`: what
  the ``edit:*`` negatives change and how the rest of a trajectory is re-executed after the edit;
- :meth:`~Grounding.truncate_at`: where ``truncate`` cuts (before the last decisive step);
- :meth:`~Grounding.hindsight`: where the trajectory missed its own task but verifiably reached
  another one the env can pose, the trajectory replayed as that task (game24: "make N").

Per env:

- generic (scienceworld, textworld and any env registered later): the task is the intent; the
  outcome is known when the episode succeeded. Decisive steps are those the env rewarded.
- ``game24``: a solved puzzle; the intent is the env's instruction for its four numbers; facts are
  the four numbers and the target (a re-phrase may not add other numbers). A finished trajectory
  that missed 24 but left one whole number N >= 0 is, in hindsight, a solution of the env's task
  "make N from a b c d" (task ``"<i>@<N>"``, see :mod:`agentcritic.envs.game24`): its steps are
  replayed there with the answer line ``= N`` and kept when the env confirms it, so random or LLM
  exploration yields positives without the solver. Decisive steps are the arithmetic
  steps; after an edited step, later steps are kept when still admissible, else replaced by an
  admissible one, and the answer line is rebuilt from the steps actually taken.
- ``shop``: a purchase; the intent is a WebShop goal made from the item bought — its type, 1–3 of
  its attributes, the option values chosen, and a budget above its price by WebShop's own rule —
  phrased by the shop's goal templates. Decisive steps: the click on the product (``edit:product``)
  and each option click (``edit:option``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

from agentcritic.envs.base import TextEnv
from agentcritic.synth.replay import admissible_after, execute
from agentcritic.synth.synth_config import GAME24_ERRORS
from agentcritic.types import Trajectory

FULFILLED = 1.0 - 1e-9


class Outcome:
    """A grounded intent: ``intent`` text, ``facts`` a re-phrase must keep, ``goal`` to judge by."""

    def __init__(self, intent: str, facts: list[str], goal: dict[str, Any]) -> None:
        self.intent, self.facts, self.goal = intent, facts, goal


class Grounding:
    """The generic grounding (see the module doc); subclasses specialise it per env."""

    #: whether an ungrounded trajectory still did something an LLM may describe as its intent
    #: (an unfinished ScienceWorld task: yes; an unsolved puzzle or a shop visit that bought nothing: no)
    describable: bool = True

    def __init__(self, env: TextEnv) -> None:
        self.env = env

    # ------------------------------------------------------------------ intents
    def outcome(self, traj: Trajectory, rng: random.Random) -> Outcome | None:
        if not traj.success:
            return None
        return Outcome(traj.instruction, facts=[], goal={"task": traj.task_id})

    def missing_facts(self, text: str, outcome: Outcome) -> list[str]:
        """The facts of ``outcome`` that ``text`` lost (case-insensitive substring check)."""
        low = " ".join(text.lower().split())
        return [f for f in outcome.facts if " ".join(f.lower().split()) not in low]

    # ------------------------------------------------------------------ judging
    def reward_of(self, traj: Trajectory, goal: dict[str, Any] | None) -> float:
        """The env's reward of a recorded trajectory against ``goal`` (None: the task's own)."""
        return float(traj.meta.get("exploring_score", traj.score) or 0.0)

    def judge(self, traj: Trajectory, goal: dict[str, Any] | None) -> float:
        """Re-execute ``traj``'s actions in the env and return its reward against ``goal``."""
        self.env.restore(traj.actions, task_id=traj.task_id, seed=traj.meta.get("seed"))
        return float(self.env.score)

    def as_goal(self, traj: Trajectory, goal: dict[str, Any] | None) -> Trajectory:
        """``traj`` as a trajectory towards ``goal`` (None: its exploring task), for :meth:`reward_of`
        and for the text a reward model reads. Generic envs judge the recorded trajectory itself."""
        return traj

    # ------------------------------------------------------------------ edits
    def decisive(self, traj: Trajectory) -> list[tuple[int, str]]:
        return [(i, "step") for i, s in enumerate(traj.steps) if s.reward > 0]

    def alternatives(self, traj: Trajectory, index: int, kind: str) -> list[str]:
        seen = admissible_after(self.env, traj.task_id, traj.meta.get("seed"), traj.actions[:index])
        return [a for a in seen if a != traj.actions[index]]

    def repair(self, action: str, info: dict[str, Any], rng: random.Random) -> str:
        return action

    def truncate_at(self, traj: Trajectory) -> int | None:
        rewarded = [i for i, s in enumerate(traj.steps) if s.reward > 0]
        return rewarded[-1] if rewarded else None

    # ------------------------------------------------------------------ hindsight
    def hindsight(self, traj: Trajectory) -> Trajectory | None:
        """``traj`` replayed as the task it reached instead of its own (verified by the env), or None."""
        return None

    # ------------------------------------------------------------------ llm negatives
    llm_negative_types: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------- game24
_INT = re.compile(r"\d+")


class Game24Grounding(Grounding):
    llm_negative_types = GAME24_ERRORS
    describable = False

    def puzzle(self, task_id: str) -> tuple[int, ...]:
        from agentcritic.envs.game24 import load_puzzles, parse_task

        return load_puzzles()[(parse_task(task_id) or (int(task_id), 24))[0]]

    def target(self, task_id: str) -> int:
        from agentcritic.envs.game24 import parse_task

        return (parse_task(task_id) or (0, 24))[1]

    def outcome(self, traj: Trajectory, rng: random.Random) -> Outcome | None:
        if not traj.success:
            return None
        numbers = sorted(self.puzzle(traj.task_id))
        target = self.target(traj.task_id)
        answer = traj.actions[-1] if traj.actions else ""
        return Outcome(traj.instruction, facts=[str(n) for n in numbers] + [str(target)],
                       goal={"numbers": numbers, "expression": answer, "target": target, "task": traj.task_id})

    def reward_of(self, traj: Trajectory, goal: dict[str, Any] | None) -> float:
        # A game24 goal is a task (its numbers and target): a trajectory of that task is judged by
        # its own recorded score (a hindsight positive's exploring score was against 24).
        if _goal_task(traj, goal) == traj.task_id:
            return float(traj.score or 0.0)
        return super().reward_of(traj, goal)

    def as_goal(self, traj: Trajectory, goal: dict[str, Any] | None) -> Trajectory:
        """``traj``'s steps replayed as the goal's task when that is its puzzle with another target
        (a hindsight "make N", or back to 24), with the answer line of the steps taken claiming the
        goal's target; the env judges the replay. Another puzzle's goal: ``traj`` unchanged."""
        task = _goal_task(traj, goal)
        if task == traj.task_id or self.puzzle(task) != self.puzzle(traj.task_id):
            return traj
        return self._replay_as(traj, task, [a for a in traj.actions if not a.lower().startswith("answer")])

    def _replay_as(self, traj: Trajectory, task: str, steps: list[str]) -> Trajectory:
        """``steps`` of ``traj`` replayed as ``task``, then the env's answer line for them when one number
        is left (the only admissible action there); actors and fallbacks kept from ``traj``."""
        seed = traj.meta.get("seed")
        _, info = self.env.restore(steps, task_id=task, seed=seed)
        left = [] if self.env.terminated else list(info.get("admissible_actions") or [])
        answer = left if len(left) == 1 and left[0].lower().startswith("answer") else []
        twin, _ = execute(self.env, task, seed, [*steps, *answer], instruction=self.env.instruction)
        for mine, theirs in zip(twin.steps, traj.steps):  # the replay keeps who took each step
            mine.actor = theirs.actor
            if "fallback" in theirs.info:
                mine.info["fallback"] = theirs.info["fallback"]
        twin.meta = {**traj.meta, **twin.meta, "posed_as": task}
        return twin

    def hindsight(self, traj: Trajectory) -> Trajectory | None:
        from agentcritic.envs.game24 import hindsight_task, parse_task

        parsed = parse_task(traj.task_id)
        if traj.success or parsed is None or parsed[1] != 24:
            return None
        end = next((i for i, s in enumerate(traj.steps)
                    if not s.info.get("invalid") and not s.action.lower().startswith("answer")
                    and len(s.info.get("numbers_left") or ()) == 1), None)
        if end is None:
            return None
        left = str(traj.steps[end].info["numbers_left"][0])
        if not left.isdecimal():  # a fraction or a negative number: no "make N" task for it
            return None
        twin = self._replay_as(traj, hindsight_task(traj.task_id, int(left)), traj.actions[: end + 1])
        if not twin.success:
            return None
        twin.meta.pop("posed_as")
        twin.meta["hindsight"] = {"from_task": traj.task_id, "target": int(left),
                                  "answer_was": traj.actions[end + 1] if end + 1 < len(traj.actions) else None}
        return twin

    def missing_facts(self, text: str, outcome: Outcome) -> list[str]:
        found = Counter(_INT.findall(text))
        need = Counter(outcome.facts)
        missing = [n for n, k in need.items() if found[n] < k]
        extra = [n for n in found if n not in need]
        return missing + [f"no other number ({n})" for n in extra]

    def decisive(self, traj: Trajectory) -> list[tuple[int, str]]:
        return [(i, "step") for i, s in enumerate(traj.steps)
                if not s.action.lower().startswith("answer") and not s.info.get("invalid")]

    def repair(self, action: str, info: dict[str, Any], rng: random.Random) -> str:
        choices = list(info.get("admissible_actions") or [])
        if not choices or action in choices:
            return action
        if len(choices) == 1 and choices[0].startswith("Answer"):
            return choices[0]  # the answer line of the steps actually taken
        return rng.choice(sorted(choices))

    def truncate_at(self, traj: Trajectory) -> int | None:
        if traj.actions and traj.actions[-1].lower().startswith("answer") and len(traj.actions) > 1:
            return len(traj.actions) - 1
        return None


def _goal_task(traj: Trajectory, goal: dict[str, Any] | None) -> str:
    """The game24 task a goal poses; no goal: the task ``traj`` was explored on (a hindsight twin's
    puzzle at 24)."""
    if goal is not None and goal.get("task"):
        return str(goal["task"])
    return str(traj.meta.get("exploring_task", traj.task_id))


# ---------------------------------------------------------------------------------- shop
def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_NO_OPTION_TEMPLATES = (
    "i need {a} which is {attrs}, and price lower than {price} dollars",
    "i am looking for {a} that is {attrs}, and price lower than {price} dollars",
    "find me {attrs_adj} {t}, and price lower than {price} dollars",
)


class ShopGrounding(Grounding):
    describable = False

    def _purchase(self, traj: Trajectory) -> dict[str, Any] | None:
        last = traj.steps[-1].info if traj.steps else {}
        return last if "purchased_asin" in last else None

    def outcome(self, traj: Trajectory, rng: random.Random) -> Outcome | None:
        from agentcritic.envs.shop.goals import TEMPLATES, price_upper_for
        from agentcritic.envs.shop.vocab import OPTION_PHRASES

        bought = self._purchase(traj)
        if bought is None:
            return None
        product = self.env.catalogue.find(bought["purchased_asin"])
        if product is None:
            return None
        chosen = dict(bought.get("chosen_options") or {})
        ptype = product.type
        k = rng.randint(1, min(3, len(product.attributes)))
        attributes = rng.sample(list(product.attributes), k)
        price_upper = price_upper_for(product.price, rng)
        article = ptype.name if ptype.plural else ("an " if ptype.name[0] in "aeiou" else "a ") + ptype.name
        fields = {"a": article, "t": ptype.name, "attrs": _join(attributes), "attrs_adj": " ".join(attributes),
                  "price": f"{price_upper:.2f}"}
        options = sorted(chosen.items())
        if options:
            fields["opts"] = _join([OPTION_PHRASES.get(g, "{v}").format(v=v) for g, v in options])
            intent = rng.choice(TEMPLATES).format(**fields)
        else:
            intent = rng.choice(_NO_OPTION_TEMPLATES).format(**fields)
        goal = {
            "asin": product.asin, "product_type": ptype.name, "category": list(product.category),
            "nouns": sorted(product.nouns), "attributes": attributes, "options": [list(o) for o in options],
            "price_upper": price_upper,
        }
        facts = [ptype.name, *attributes, *(v for _, v in options), f"{price_upper:.2f}"]
        return Outcome(intent, facts, goal)

    def missing_facts(self, text: str, outcome: Outcome) -> list[str]:
        price = outcome.facts[-1]
        missing = super().missing_facts(text, Outcome(outcome.intent, outcome.facts[:-1], outcome.goal))
        prices = {float(p) for p in re.findall(r"\d+(?:\.\d+)?", text)}
        if float(price) not in prices:
            missing.append(price)
        return missing

    def _reward(self, purchase: dict[str, Any] | None, goal: dict[str, Any] | None, own: float) -> float:
        from agentcritic.envs.shop.reward import purchase_reward

        if goal is None or "asin" not in goal:
            return own
        if purchase is None:
            return 0.0
        product = self.env.catalogue.find(purchase["purchased_asin"])
        view = SimpleNamespace(
            product_type=goal["product_type"], category=tuple(goal["category"]), nouns=frozenset(goal["nouns"]),
            attributes=tuple(goal["attributes"]), options=tuple(tuple(o) for o in goal["options"]),
            price_upper=float(goal["price_upper"]),
        )
        return float(purchase_reward(view, product, dict(purchase.get("chosen_options") or {})).reward)

    def reward_of(self, traj: Trajectory, goal: dict[str, Any] | None) -> float:
        return self._reward(self._purchase(traj), goal, super().reward_of(traj, goal))

    def judge(self, traj: Trajectory, goal: dict[str, Any] | None) -> float:
        _, info = self.env.restore(traj.actions, task_id=traj.task_id, seed=traj.meta.get("seed"))
        purchase = info if "purchased_asin" in info else None
        return self._reward(purchase, goal, float(self.env.score))

    def decisive(self, traj: Trajectory) -> list[tuple[int, str]]:
        from agentcritic.envs.shop.pages import BUTTONS

        out = []
        before = "search"
        for i, step in enumerate(traj.steps):
            after = step.info.get("page", before)
            m = re.fullmatch(r"click\[(.*)\]", step.action, re.IGNORECASE)
            if m and not step.info.get("invalid"):
                target = m.group(1).strip().lower()
                if before == "results" and after == "item":
                    out.append((i, "product"))
                elif before == "item" and after == "item" and target not in BUTTONS:
                    out.append((i, "option"))
            before = after
        # Only the clicks that made the purchase are decisive: the last visit of the item bought,
        # and in it the last click of each option group (the value that was bought).
        bought = self._purchase(traj)
        products = [i for i, kind in out if kind == "product"]
        if bought is None or not products:
            return []
        start = products[-1]
        product = self.env.catalogue.find(bought["purchased_asin"])
        chosen = {v.lower() for v in (bought.get("chosen_options") or {}).values()}
        last_of_group: dict[str, int] = {}
        for i, kind in out:
            if kind != "option" or i < start:
                continue
            value = traj.actions[i][6:-1].strip().lower()
            group = next((g for g, values in product.options if value in (v.lower() for v in values)), None)
            if group is not None:
                last_of_group[group] = i
        options = [(i, "option") for i in sorted(last_of_group.values()) if traj.actions[i][6:-1].strip().lower() in chosen]
        return [(start, "product"), *options]

    def alternatives(self, traj: Trajectory, index: int, kind: str) -> list[str]:
        from agentcritic.envs.shop.pages import BUTTONS

        original = traj.actions[index]
        if kind == "product":
            seen = admissible_after(self.env, traj.task_id, traj.meta.get("seed"), traj.actions[:index])
            return [a for a in seen if a != original and a[6:-1].lower() not in BUTTONS]
        asin = traj.steps[index].info.get("asin")
        product = self.env.catalogue.find(asin) if asin else None
        value = original[6:-1].strip().lower()
        if product is None:
            return []
        for _, values in product.options:
            if value in (v.lower() for v in values):
                return [f"click[{v}]" for v in values if v.lower() != value]
        return []

    def truncate_at(self, traj: Trajectory) -> int | None:
        if self._purchase(traj) is not None and len(traj.actions) > 1:
            return len(traj.actions) - 1
        return None


GROUNDINGS: dict[str, type[Grounding]] = {"game24": Game24Grounding, "shop": ShopGrounding}


def grounding_for(env: TextEnv) -> Grounding:
    """The grounding of ``env`` (the generic one for envs without their own)."""
    return GROUNDINGS.get(env.name, Grounding)(env)
