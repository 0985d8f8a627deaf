"""Game of 24 as a text environment: make 24 from four numbers, one arithmetic step at a time.

The puzzles and the standard split come from Tree-of-Thoughts (ToT): the ranked list
``data/game24/24.csv`` (1,362 puzzles, easiest first; see ``data/game24/NOTICE.md``). ToT's action
format is kept: a step ``a op b = c (left: x y z)``, then ``Answer: <expression> = 24``.

Decisions:

- **Task ids** are the 0-based row index in ToT's list, as a string: id ``"900"`` is rank 901.
  ``test`` is ids 900–999 (ranks 901–1000), ToT's standard test set. ``dev`` is 100 ids drawn
  from the other 1,262 with ``random.Random(24)``; ``train`` is the remaining 1,162.
- **State** is the multiset of numbers left, exact ``Fraction`` values, shown sorted ascending
  (as in ToT's prompts); fractions print as ``8/3`` and negatives as ``-3``. Each number carries
  the expression it was built from, so the answer line can be written from the history.
- **Steps** are parsed leniently: any spacing, ``×``/``x``/``·`` for ``*``, ``÷`` for ``/``,
  ``−`` for ``-``, operands written as integers or ``a/b`` fractions (no spaces inside a
  fraction: ``8 / 1/3`` is 8 divided by 1/3), either operand order, an optional trailing period.
  The ``(left: …)`` part is optional; when present it must list exactly the numbers left after
  the step (in any order), else the step is invalid. Both operands must be among the numbers left
  (two copies when they are equal), and the claimed result must be exactly right; otherwise the
  step is invalid, the state is unchanged, and the observation says what was wrong. A step made
  when one number is left is invalid and says to write the answer.
- **Answer** ``Answer: <expression> = 24`` is checked by :mod:`agentcritic.envs.game24_expr`
  (never ``eval``): it must use exactly the four input numbers (as a multiset; unary minus is
  allowed, as in ToT's sympy check) and equal 24. It may be given at any time: it is judged
  against the input, not against the steps taken. An answer is one shot, as in ToT's evaluation:
  right → score 1, success, done; wrong (value, numbers, or a right-hand side other than 24) →
  score 0, done. An answer that cannot be parsed at all (code, names, powers, unbalanced
  parentheses) is an invalid action instead, and the episode goes on.
- **Admissible actions**: every unordered pair of the numbers left × every defined operation
  (both orders for ``-`` and ``/``, no division by zero; the commutative ones written smaller
  number first), with the ``(left: …)`` part, deduplicated and sorted. Once one number is left,
  the only admissible action is the answer line built from the steps, operands in the order the
  steps wrote them, parenthesised only where needed (``8 / 3``, ``3 - 8/3``, ``8 / 1/3`` give
  ``Answer: 8 / (3 - 8 / 3) = 24``), even when that number is not 24: the agent ends the
  episode with a (failing) answer, and the env does not reveal early that no path to 24 remains.
- **Action grammar** (``action_pattern``, for constrained decoding): a step whose operands are two of
  the numbers left and whose ``(left: …)`` lists the others with one more number (the result), or,
  once one number is left, only the answer line. The result and the answer's expression are free
  text of digits and operators: a grammar-bound model still does its own arithmetic, the env judges it.
- **Expert**: an exact solver, memoised over sorted multisets of numbers left, returns the first
  step (preferring steps that keep all numbers non-negative integers, then in sorted order) whose
  result can still make 24, or the answer line; ``None`` where the current state cannot make 24.
- ``max_steps`` defaults to 8: a solution takes 4 actions (three steps and the answer), leaving
  room for four invalid tries.
- ``seed`` changes nothing: the game is deterministic.
- **Hindsight tasks** ``"<i>@<N>"`` (:func:`hindsight_task`): puzzle ``i`` with the target ``N`` (a
  whole number >= 0) in place of 24 — the instruction, the answer line and the check of the answer
  all use ``N``. They are listed in no split; reward-data synthesis makes them from explored
  trajectories that ended with the one number ``N`` ("make N from a b c d", verified by replaying the
  steps here), so exploring without the solver still yields positives. The expert knows only 24: on
  a hindsight task it writes the answer line once ``N`` is the number left, and nothing before.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from math import gcd

from agentcritic.envs.base import EnvError, StepOutcome, TextEnv, regex_literal
from agentcritic.envs.game24_expr import ExpressionError, evaluate

TARGET = Fraction(24)
NUM_PUZZLES = 1362
TEST_IDS = range(900, 1000)
DEV_SIZE = 100
DEV_SEED = 24
MAX_ACTION_CHARS = 300

_DATA = "data/game24/24.csv"
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_NUM = r"[-−–]?\d{1,9}(?:/\d{1,9})?"
_STEP = re.compile(
    rf"^\s*(?P<a>{_NUM})\s*(?P<op>[-+*/×÷x·−–])\s*(?P<b>{_NUM})\s*=\s*(?P<c>{_NUM})"
    r"\s*(?:\(\s*left\s*:?\s*(?P<left>[^()]*)\))?\s*\.?\s*$",
    re.IGNORECASE,
)
_NUMBER = re.compile(_NUM)
_ANSWER = re.compile(r"^\s*answer\s*:?(?P<body>.*)$", re.IGNORECASE | re.DOTALL)
_OP_ALIASES = {"×": "*", "x": "*", "X": "*", "·": "*", "÷": "/", "−": "-", "–": "-"}
_HINDSIGHT = re.compile(r"^(?P<index>0|[1-9]\d{0,5})@(?P<target>0|[1-9]\d{0,5})$")
#: a number a step may claim (the env checks it): an integer or a fraction, maybe negative
_NUM_PATTERN = "-?[0-9]{1,6}(?:/[0-9]{1,6})?"
#: the expression of an answer line (the env parses and checks it)
_EXPRESSION_PATTERN = "[(0-9][-+*/() 0-9]{0,60}"
_FORMAT_HINT = "write a step as 'a op b = c (left: ...)' with two of the numbers left, or 'Answer: <expression> = 24'"


# --------------------------------------------------------------------------------------- data
@lru_cache(maxsize=1)
def load_puzzles() -> tuple[tuple[int, ...], ...]:
    """ToT's 1,362 puzzles in rank order; index i is task id ``str(i)`` (rank i + 1)."""
    try:
        text = resources.files("agentcritic").joinpath(_DATA).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise EnvError(f"game24: the puzzle list {_DATA} is missing from the package; reinstall agentcritic") from exc
    puzzles = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text))):
        if int(row["Rank"]) != i + 1:
            raise EnvError(f"game24: {_DATA} row {i + 2} has rank {row['Rank']}, expected {i + 1}")
        puzzles.append(tuple(int(x) for x in row["Puzzles"].split()))
    if len(puzzles) != NUM_PUZZLES or any(len(p) != 4 for p in puzzles):
        raise EnvError(f"game24: {_DATA} should hold {NUM_PUZZLES} puzzles of four numbers; it holds {len(puzzles)}")
    return tuple(puzzles)


@lru_cache(maxsize=1)
def _splits() -> dict[str, tuple[str, ...]]:
    rest = [i for i in range(len(load_puzzles())) if i not in TEST_IDS]
    dev = sorted(random.Random(DEV_SEED).sample(rest, DEV_SIZE))
    dev_set = set(dev)
    return {
        "train": tuple(str(i) for i in rest if i not in dev_set),
        "dev": tuple(str(i) for i in dev),
        "test": tuple(str(i) for i in TEST_IDS),
    }


def parse_task(task_id: str) -> tuple[int, int] | None:
    """(puzzle index, target) of a task id (``"17"`` or the hindsight ``"17@10"``), None if it is neither."""
    if task_id.isascii() and task_id.isdecimal() and task_id == str(int(task_id)):
        index, target = int(task_id), 24
    else:
        m = _HINDSIGHT.match(task_id)
        if m is None:
            return None
        index, target = int(m.group("index")), int(m.group("target"))
    return (index, target) if index < len(load_puzzles()) else None


def hindsight_task(task_id: str, target: int) -> str:
    """The task id of ``task_id``'s puzzle with ``target`` to make (``"17"``, 10 → ``"17@10"``; 24 → ``"17"``)."""
    parsed = parse_task(task_id)
    if parsed is None or target < 0:
        raise EnvError(f"game24: no hindsight task for {task_id!r} with target {target}")
    return str(parsed[0]) if target == 24 else f"{parsed[0]}@{target}"


def _show(values: Iterable[Fraction | int]) -> str:
    return " ".join(str(v) for v in values)


def _number(text: str) -> Fraction:
    """A number of a step (``-3``, ``8/3``); ``ValueError`` for anything else (never ``1e999999``,
    which ``Fraction`` alone would expand), ``ZeroDivisionError`` for ``a/0``."""
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    return Fraction(text.replace("−", "-").replace("–", "-"))


# --------------------------------------------------------------------------------------- arithmetic
def _apply(op: str, x: Fraction, y: Fraction) -> Fraction:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    return x / y


# The solver works on (numerator, denominator) int pairs in lowest terms: hashing and arithmetic on
# them are several times faster than on Fraction, and the solver is the env's hot spot.
_Pair = tuple[int, int]


def _pair(n: int, d: int) -> _Pair:
    if d < 0:
        n, d = -n, -d
    g = gcd(n, d)
    return (n // g, d // g)


def _pair_results(a: _Pair, b: _Pair) -> set[_Pair]:
    (an, ad), (bn, bd) = a, b
    out = {_pair(an * bd + bn * ad, ad * bd), _pair(an * bn, ad * bd)}
    out.add(_pair(an * bd - bn * ad, ad * bd))
    out.add(_pair(bn * ad - an * bd, ad * bd))
    if bn:
        out.add(_pair(an * bd, ad * bn))
    if an:
        out.add(_pair(bn * ad, bd * an))
    return out


def _makes_24(a: _Pair, b: _Pair) -> bool:
    (an, ad), (bn, bd) = a, b
    d = ad * bd
    return (
        an * bd + bn * ad == 24 * d
        or an * bn == 24 * d
        or abs(an * bd - bn * ad) == 24 * d
        or (bn != 0 and an * bd == 24 * ad * bn)
        or (an != 0 and bn * ad == 24 * bd * an)
    )


@lru_cache(maxsize=1 << 16)
def _solvable(key: tuple[_Pair, ...]) -> bool:
    if len(key) == 1:
        return key[0] == (24, 1)
    if len(key) == 2:
        return _makes_24(key[0], key[1])
    n = len(key)
    for i in range(n):
        for j in range(i + 1, n):
            rest = key[:i] + key[i + 1 : j] + key[j + 1 :]
            for r in _pair_results(key[i], key[j]):
                if _solvable(tuple(sorted((*rest, r)))):
                    return True
    return False


def solvable(values: Iterable[Fraction | int]) -> bool:
    """Whether the multiset ``values`` can make 24 with + - * /, each number used once (exact)."""
    return _solvable(tuple(sorted((Fraction(v).numerator, Fraction(v).denominator) for v in values)))


@lru_cache(maxsize=4096)  # ~3.5 kB an entry
def _table(values: tuple[Fraction, ...]) -> tuple[tuple[str, tuple[Fraction, ...]], ...]:
    """Every defined step from the sorted multiset ``values``: (action text, values left after).

    Deduplicated by text and sorted by it. Commutative operations are written smaller number first.
    """
    table: dict[str, tuple[Fraction, ...]] = {}
    n = len(values)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = values[i], values[j]
            rest = values[:i] + values[i + 1 : j] + values[j + 1 :]
            for x, op, y in ((a, "+", b), (a, "*", b), (b, "-", a), (a, "-", b), (b, "/", a), (a, "/", b)):
                if op == "/" and y == 0:
                    continue
                result = _apply(op, x, y)
                after = tuple(sorted((*rest, result)))
                table.setdefault(f"{x} {op} {y} = {result} (left: {_show(after)})", after)
    return tuple(sorted(table.items()))


@lru_cache(maxsize=4096)
def _expert_step(values: tuple[Fraction, ...]) -> str | None:
    """The step the expert takes from ``values``: the first, preferring non-negative integers left
    and then sorted text, whose numbers left can still make 24."""
    ranked = sorted(
        _table(values),
        key=lambda item: (any(v < 0 for v in item[1]), any(v.denominator != 1 for v in item[1]), item[0]),
    )
    return next((text for text, after in ranked if solvable(after)), None)


@dataclass(frozen=True)
class _Node:
    """A number left, with the expression over input numbers that made it."""

    value: Fraction
    op: str | None = None
    left: _Node | None = None
    right: _Node | None = None

    def render(self) -> str:
        if self.op is None or self.left is None or self.right is None:
            return str(self.value)
        prec = _PREC[self.op]
        left, right = self.left.render(), self.right.render()
        if self.left.op is not None and _PREC[self.left.op] < prec:
            left = f"({left})"
        if self.right.op is not None and (
            _PREC[self.right.op] < prec or (_PREC[self.right.op] == prec and self.op in "-/")
        ):
            right = f"({right})"
        return f"{left} {self.op} {right}"


# --------------------------------------------------------------------------------------- env
class Game24Env(TextEnv):
    """Make 24 from four numbers; see the module docstring for the rules and decisions."""

    name = "game24"

    def __init__(self, max_steps: int = 8) -> None:
        super().__init__(max_steps=max_steps)
        self.puzzle: tuple[int, ...] = ()
        self.target = TARGET
        self._nodes: list[_Node] = []

    # ----------------------------------------------------------------- hooks
    def _task_ids(self, split: str) -> list[str]:
        return list(_splits()[split])

    def is_task_id(self, task_id: str) -> bool:
        # O(1) instead of the base class's set of all ids: MCTS calls restore() (so reset) a lot.
        return parse_task(task_id) is not None

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        index, target = parse_task(task_id) or (int(task_id), 24)
        self.puzzle, self.target = load_puzzles()[index], Fraction(target)
        self._nodes = [_Node(Fraction(x)) for x in sorted(self.puzzle)]
        instruction = (
            f"Use numbers and basic arithmetic operations (+ - * /) to obtain {target}. Each step, choose two "
            "of the numbers left and combine them, written as 'a op b = c (left: ...)'; when one number "
            f"is left, write 'Answer: <expression> = {target}' using each input number exactly once. "
            f"Input: {_show(self.puzzle)}"
        )
        return self._numbers_left(), instruction

    def _step(self, action: str) -> StepOutcome:
        if len(action) > MAX_ACTION_CHARS:
            return self._invalid(f"the action is too long ({len(action)} characters, at most {MAX_ACTION_CHARS})")
        answer = _ANSWER.match(action)
        if answer:
            return self._answer(answer.group("body"))
        step = _STEP.match(action)
        if step is None:
            return self._invalid(f"could not read {action!r}; {_FORMAT_HINT}")
        return self._arith_step(step)

    def _admissible(self) -> list[str]:
        if len(self._nodes) == 1:
            return [self._answer_line()]
        return [text for text, _ in _table(self._values())]

    def _expert(self) -> str | None:
        if len(self._nodes) == 1:
            return self._answer_line() if self._nodes[0].value == self.target else None
        return _expert_step(self._values()) if self.target == TARGET else None

    def _action_pattern(self) -> str:
        """A step on two of the numbers left (``a op b = c (left: …)``, the rest of the numbers in their
        shown order with one free number, the result, at any place), or, once one number is left, the
        answer line. The result and the answer's expression are free: the env checks the arithmetic."""
        if len(self._nodes) == 1:
            return f"Answer: {_EXPRESSION_PATTERN} = {regex_literal(str(self.target))}"
        shown = [str(v) for v in self._values()]
        steps: dict[str, None] = {}
        for i, a in enumerate(shown):
            for j, b in enumerate(shown):
                if i == j:
                    continue
                rest = [regex_literal(x) for k, x in enumerate(shown) if k not in (i, j)]
                lefts = dict.fromkeys(" ".join([*rest[:k], _NUM_PATTERN, *rest[k:]]) for k in range(len(rest) + 1))
                left = lefts.popitem()[0] if len(lefts) == 1 else "(?:" + "|".join(lefts) + ")"
                steps[f"{regex_literal(a)} [-+*/] {regex_literal(b)} = {_NUM_PATTERN} \\(left: {left}\\)"] = None
        return "(?:" + "|".join(steps) + ")"

    def _extra_info(self) -> dict[str, object]:
        return {"numbers_left": [str(n.value) for n in self._nodes]}

    # ----------------------------------------------------------------- reward-model text
    #: what a reward model reads in place of the env's verdict on an answer line
    RM_ANSWER_OBSERVATION = "Answer submitted."

    @classmethod
    def rm_observation(cls, observation: str, last: bool) -> str:
        """The verdict on an answer ("Correct: …" / "Wrong answer: …") is hidden: the reward model
        must judge the steps and the expression itself, or planning with it would be planning with
        the env's own reward."""
        if observation.startswith(("Correct:", "Wrong answer:")):
            return cls.RM_ANSWER_OBSERVATION
        return observation

    # ----------------------------------------------------------------- helpers
    def _values(self) -> tuple[Fraction, ...]:
        return tuple(n.value for n in self._nodes)

    def _numbers_left(self) -> str:
        return f"Numbers left: {_show(n.value for n in self._nodes)}"

    def _answer_line(self) -> str:
        return f"Answer: {self._nodes[0].render()} = {self.target}"

    def _invalid(self, why: str) -> StepOutcome:
        return StepOutcome(f"Invalid action: {why}. {self._numbers_left()}", score=0.0, done=False, valid=False)

    def _arith_step(self, step: re.Match[str]) -> StepOutcome:
        if len(self._nodes) == 1:
            return self._invalid(
                f"only one number is left ({self._nodes[0].value}), so no step is possible; "
                "write 'Answer: <expression> = 24'"
            )
        op = _OP_ALIASES.get(step.group("op"), step.group("op"))
        try:
            x, y, claimed = (_number(step.group(k)) for k in "abc")
        except ZeroDivisionError:
            return self._invalid("a number in the step has a zero denominator")
        pool = list(self._nodes)
        used: list[_Node] = []
        for value in (x, y):
            k = next((i for i, m in enumerate(pool) if m.value == value), None)
            if k is None:
                if any(m.value == value for m in self._nodes):
                    return self._invalid(f"the step uses {value} twice but only one {value} is left")
                return self._invalid(f"{value} is not among the numbers left")
            used.append(pool.pop(k))
        if op == "/" and y == 0:
            return self._invalid("division by zero")
        result = _apply(op, x, y)
        if result != claimed:
            return self._invalid(f"wrong arithmetic: {x} {op} {y} = {result}, not {claimed}")
        node = _Node(result, op, used[0], used[1])
        after = sorted([*pool, node], key=lambda m: m.value)
        if step.group("left") is not None:
            try:
                listed = sorted(_number(t) for t in re.split(r"[\s,]+", step.group("left").strip()) if t)
            except (ValueError, ZeroDivisionError):
                return self._invalid(f"could not read the list '(left: {step.group('left')})'")
            if listed != [m.value for m in after]:
                return self._invalid(
                    f"after {x} {op} {y} = {result} the numbers left are {_show(m.value for m in after)}, "
                    f"not {_show(listed) or 'none'}"
                )
        self._nodes = after
        return StepOutcome(self._numbers_left(), score=0.0, done=False)

    def _answer(self, body: str) -> StepOutcome:
        lhs, *rhs = body.split("=")
        try:
            got = evaluate(lhs.strip())
        except ExpressionError as exc:
            return self._invalid(f"could not read the answer {lhs.strip()!r}: {exc}")
        claims = []
        for part in rhs:
            try:
                claims.append(evaluate(part.strip()).value)
            except ExpressionError as exc:
                return self._invalid(f"could not read the result {part.strip()!r} of the answer: {exc}")
        problems = []
        if got.value != self.target:
            problems.append(f"{lhs.strip()} = {got.value}, not {self.target}")
        if got.numbers != tuple(sorted(self.puzzle)):
            problems.append(
                f"it uses the numbers {_show(got.numbers)} but the input is {_show(sorted(self.puzzle))} "
                "(use each input number exactly once)"
            )
        if any(c != self.target for c in claims):
            problems.append(f"the result must be {self.target}, not {_show(c for c in claims if c != self.target)}")
        if problems:
            return StepOutcome("Wrong answer: " + "; ".join(problems) + ".", score=0.0, done=True, success=False)
        return StepOutcome(f"Correct: {lhs.strip()} = {self.target}.", score=1.0, done=True, success=True)
