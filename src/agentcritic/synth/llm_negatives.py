"""game24's ``llm_negative``: the LLM rewrites a solution with a named error, checked by rule.

Error types (:data:`~agentcritic.synth.synth_config.GAME24_ERRORS`), each with a deterministic
check on the lines written (:func:`has_error`) — the LLM's word is never taken for it:

- ``wrong_arithmetic``: a step ``a op b = c`` whose result is wrong, or a final answer over exactly
  the four input numbers whose value is not 24;
- ``missing_number``: the final answer uses only some of the input numbers (none invented);
- ``invented_number``: the final answer uses a number that is not among the inputs (more copies
  than given count too);
- ``broken_format``: no line is a readable ``Answer: <expression> = 24``, but the last line is
  still an expression over the four inputs (garbage is not a format error).

The target is 24, or ``N`` for a hindsight positive ("make N from a b c d", see
:mod:`agentcritic.synth.grounding`): every check and message takes it as ``target``.

The lines are then executed in the env, so the rejected trajectory carries the env's real
observations, and it must fail there. When the LLM's answer is unusable (empty, not of the type,
or solving the puzzle after all), a rule-made corruption of the same type replaces it
(:func:`rule_corruption`) and ``meta["made_by"]`` says ``"rule"`` instead of ``"llm"``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from fractions import Fraction
from typing import Any

from agentcritic.envs.game24_expr import ExpressionError, evaluate

ERROR_TEXT = {
    "wrong_arithmetic": "one calculation gives a wrong result",
    "missing_number": "the final answer leaves out one of the four input numbers",
    "invented_number": "the final answer uses a number that is not one of the input numbers",
    "broken_format": "the final answer is not written as 'Answer: <expression> = {target}'",
}
_STEP = re.compile(r"^\s*(\d+(?:/\d+)?)\s*([-+*/])\s*(\d+(?:/\d+)?)\s*=\s*(-?\d+(?:/\d+)?)")
_ANSWER = re.compile(r"^\s*answer\s*:(.*)$", re.IGNORECASE)
_NUM_TOKEN = re.compile(r"\d+")
MAX_LINES = 8


def parse_lines(text: str) -> list[str]:
    """Non-empty lines of an LLM answer, without list markers, at most :data:`MAX_LINES`."""
    lines = []
    for raw in (text or "").splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", raw).strip()
        if line:
            lines.append(line)
    return lines[:MAX_LINES]


def read_answer(lines: list[str], target: int = 24) -> tuple[Fraction, tuple[int, ...]] | None:
    """(value, numbers used) of the last readable ``Answer: expr = <target>`` line, or None."""
    for line in reversed(lines):
        m = _ANSWER.match(line)
        if not m:
            continue
        lhs, _, rhs = m.group(1).partition("=")
        try:
            got = evaluate(lhs.strip())
            if evaluate(rhs.strip()).value != target:
                return None
        except ExpressionError:
            return None
        return got.value, got.numbers
    return None


def _wrong_step(lines: list[str]) -> bool:
    for line in lines:
        m = _STEP.match(line)
        if not m:
            continue
        a, op, b, c = Fraction(m.group(1)), m.group(2), Fraction(m.group(3)), Fraction(m.group(4))
        if op == "/" and b == 0:
            return True
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]
        if value != c:
            return True
    return False


def has_error(kind: str, lines: list[str], puzzle: tuple[int, ...], target: int = 24) -> bool:
    """Whether ``lines`` really contain an error of type ``kind`` (see the module doc)."""
    answer = read_answer(lines, target)
    if kind == "broken_format":
        # Still a solution attempt (its last line is an expression over the four inputs), just not
        # in the answer format: garbage is not a "format" error.
        last = lines[-1] if lines else ""
        numbers = sorted(int(n) for n in _NUM_TOKEN.findall(last))
        return answer is None and numbers == sorted(puzzle) and bool(re.search(r"[-+*/]", last))
    if answer is None:
        return False
    value, numbers = answer
    used, given = Counter(numbers), Counter(puzzle)
    if kind == "wrong_arithmetic":
        return _wrong_step(lines) or (used == given and value != target)
    if kind == "missing_number":
        return not (used - given) and used != given
    if kind == "invented_number":
        return bool(used - given)
    raise ValueError(f"unknown game24 error type {kind!r}; valid types are {list(ERROR_TEXT)}")


def negative_messages(kind: str, puzzle: tuple[int, ...], lines: list[str], target: int = 24) -> list[dict[str, str]]:
    solution = "\n".join(lines)
    goal = "" if target == 24 else f" (target {target})"
    return [
        {"role": "system", "content": "You write flawed Game of 24 solutions, for training a checker."},
        {"role": "user", "content": f"Numbers: {' '.join(map(str, puzzle))}{goal}\nA correct solution:\n{solution}\n\n"
                                    f"Write the solution again in the same format, one line per step, but with "
                                    f"this mistake: {ERROR_TEXT[kind].format(target=target)}. Write only the lines."},
    ]


def _tokens(expr: str) -> list[str]:
    return re.findall(r"\d+|[-+*/()]", expr)


def _answer_expr(lines: list[str]) -> str | None:
    for line in reversed(lines):
        m = _ANSWER.match(line)
        if m:
            return m.group(1).partition("=")[0].strip()
    return None


def rule_corruption(kind: str, lines: list[str], puzzle: tuple[int, ...], rng: random.Random,
                    target: int = 24) -> list[str] | None:
    """The solution ``lines`` with one error of type ``kind`` in its answer line, made by rule."""
    expr = _answer_expr(lines)
    if expr is None:
        return None
    steps = [line for line in lines if not _ANSWER.match(line)]
    tokens = _tokens(expr)
    numbers = [i for i, t in enumerate(tokens) if t.isdigit()]
    candidates: list[str] = []
    if kind == "wrong_arithmetic":
        ops = [i for i, t in enumerate(tokens) if t in "+-*/" and i > 0 and tokens[i - 1] not in "(+-*/"]
        for i in rng.sample(ops, len(ops)):
            for new in rng.sample("+-*/", 4):
                if new != tokens[i]:
                    candidates.append(" ".join(tokens[:i] + [new] + tokens[i + 1:]))
    elif kind == "missing_number":
        for i in rng.sample(numbers, len(numbers)):
            if i + 1 < len(tokens) and tokens[i + 1] in "+-*/":
                candidates.append(" ".join(tokens[:i] + tokens[i + 2:]))
            if i > 0 and tokens[i - 1] in "+-*/":
                candidates.append(" ".join(tokens[:i - 1] + tokens[i + 1:]))
        candidates.append(" + ".join(map(str, sorted(puzzle)[:3])))
    elif kind == "invented_number":
        outside = [n for n in range(1, 14) if n not in puzzle]
        for i in rng.sample(numbers, len(numbers)):
            candidates.append(" ".join(tokens[:i] + [str(rng.choice(outside))] + tokens[i + 1:]))
    elif kind == "broken_format":
        candidates = [f"The answer is {expr}", f"{expr}", f"Answer {expr} equals the target"]
    else:
        raise ValueError(f"unknown game24 error type {kind!r}; valid types are {list(ERROR_TEXT)}")
    for cand in candidates:
        cand = re.sub(r"\( ", "(", re.sub(r" \)", ")", cand))
        out = steps + ([cand] if kind == "broken_format" else [f"Answer: {cand} = {target}"])
        if has_error(kind, out, puzzle, target):
            return out
    return None


def llm_negative_lines(
    kind: str, lines: list[str], puzzle: tuple[int, ...], lm: Any, rng: random.Random, max_tokens: int = 96,
    temperature: float = 0.7, target: int = 24,
) -> tuple[list[str] | None, str | None]:
    """(lines, None) when the LLM wrote a real error of ``kind``; else (None, why it failed)."""
    from agentcritic.llm import LLMError

    if lm is None:
        return None, "no_llm"
    try:
        text = lm.generate(negative_messages(kind, puzzle, lines, target), n=1, temperature=temperature,
                           max_tokens=max_tokens, seed=rng.randrange(2**31))[0]
    except LLMError:
        return None, "error"
    written = parse_lines(text)
    if not written:
        return None, "empty"
    if not has_error(kind, written, puzzle, target):
        return None, "wrong_type"
    return written, None
