"""A small, safe evaluator for the arithmetic a model writes in a Game of 24 answer.

Model text is never handed to ``eval``, ``ast`` or sympy: a hand-written tokenizer feeds a
recursive-descent parser over this grammar, and values are exact :class:`fractions.Fraction`::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | primary
    primary := INTEGER | "(" expr ")"

Decisions:

- Literals are non-negative decimal integers of at most ``MAX_DIGITS`` digits. Decimals (``2.5``)
  are refused: the puzzles use integers, and a decimal in an answer is almost always a rounded
  fraction (``2.67``) that would make a near miss look right or wrong by accident. Write ``8 / 3``.
- ``×`` and ``·`` are aliases of ``*``, ``÷`` of ``/``, and ``−`` (U+2212) and ``–`` (en dash) of
  ``-``, because models copy them from prose.
- Powers are refused altogether (``**`` and ``^``): Game of 24 has none, and they are the one way a
  short text makes a huge number.
- Anything else (names, calls, attribute access, quotes, brackets other than parentheses, implicit
  multiplication such as ``2(3)``) is an :class:`ExpressionError` whose message says what was
  wrong and at which 0-based character position.
- Limits: at most ``MAX_LENGTH`` characters and ``MAX_DEPTH`` nested parentheses or signs, so no
  input can exhaust time, memory or Python's recursion limit.
- Division by zero is an error at the position of the ``/``.

:func:`evaluate` returns the value and the sorted multiset of the integer literals, which is what
the env compares with the puzzle's four numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from agentcritic.errors import AgentCriticError

MAX_LENGTH = 200
MAX_DIGITS = 6
MAX_DEPTH = 32

_DIGITS = frozenset("0123456789")
_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"}
_ALLOWED = "use only integers, + - * / and parentheses"


class ExpressionError(AgentCriticError, ValueError):
    """Text that is not an allowed arithmetic expression; ``position`` is a 0-based offset."""

    def __init__(self, problem: str, position: int | None = None, hint: str = "") -> None:
        self.problem = problem
        self.position = position
        message = problem if position is None else f"{problem} at position {position}"
        if hint:
            message = f"{message}; {hint}"
        super().__init__(message)


@dataclass(frozen=True)
class Evaluation:
    """The exact value of an expression and the integer literals it used (sorted)."""

    value: Fraction
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "op", "(", ")", "end"
    text: str
    position: int
    value: int = 0


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _DIGITS:
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            if j < n and text[j] == ".":
                if j + 1 < n and text[j + 1] in _DIGITS:
                    k = j + 1
                    while k < n and text[k] in _DIGITS:
                        k += 1
                    raise ExpressionError(
                        f"decimal number {text[i:k]!r} is not allowed", i, "write fractions as a / b"
                    )
                raise ExpressionError("unexpected '.' (attribute access and decimals are not allowed)", j, _ALLOWED)
            if j - i > MAX_DIGITS:
                raise ExpressionError(f"number too large ({j - i} digits, at most {MAX_DIGITS})", i)
            tokens.append(_Token("num", text[i:j], i, int(text[i:j])))
            i = j
        elif c == "*" and i + 1 < n and text[i + 1] == "*":
            raise ExpressionError("exponent '**' is not allowed", i, "Game of 24 uses only + - * /")
        elif c == "^":
            raise ExpressionError("exponent '^' is not allowed", i, "Game of 24 uses only + - * /")
        elif c in _OPERATORS:
            tokens.append(_Token("op", _OPERATORS[c], i))
            i += 1
        elif c in "()":
            tokens.append(_Token(c, c, i))
            i += 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            raise ExpressionError(f"names are not allowed (found {text[i:j]!r})", i, _ALLOWED)
        else:
            raise ExpressionError(f"unexpected character {c!r}", i, _ALLOWED)
    tokens.append(_Token("end", "", n))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.numbers: list[int] = []

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _nest(self, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.tok.position)
        return depth + 1

    def parse(self) -> Fraction:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression")
        value = self.expr(0)
        tok = self.tok
        if tok.kind == ")":
            raise ExpressionError("unmatched ')'", tok.position)
        if tok.kind != "end":
            raise ExpressionError(
                f"expected an operator before {tok.text!r}", tok.position, "implicit multiplication is not allowed"
            )
        return value

    def expr(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.tok.text
            self.i += 1
            right = self.term(depth)
            value = value + right if op == "+" else value - right
        return value

    def term(self, depth: int) -> Fraction:
        value = self.unary(depth)
        while self.tok.kind == "op" and self.tok.text in "*/":
            op_tok = self.tok
            self.i += 1
            right = self.unary(depth)
            if op_tok.text == "*":
                value = value * right
            elif right == 0:
                raise ExpressionError("division by zero", op_tok.position)
            else:
                value = value / right
        return value

    def unary(self, depth: int) -> Fraction:
        if self.tok.kind == "op" and self.tok.text in "+-":
            sign = self.tok.text
            depth = self._nest(depth)
            self.i += 1
            value = self.unary(depth)
            return -value if sign == "-" else value
        return self.primary(depth)

    def primary(self, depth: int) -> Fraction:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            self.numbers.append(tok.value)
            return Fraction(tok.value)
        if tok.kind == "(":
            depth = self._nest(depth)
            self.i += 1
            value = self.expr(depth)
            if self.tok.kind != ")":
                raise ExpressionError("unclosed '('", tok.position, "add the missing ')'")
            self.i += 1
            return value
        if tok.kind == "end":
            raise ExpressionError("unexpected end of expression", tok.position, "expected a number or '('")
        raise ExpressionError(f"unexpected {tok.text!r}", tok.position, "expected a number or '('")


def evaluate(text: str) -> Evaluation:
    """Evaluate ``text`` exactly; raise :class:`ExpressionError` for anything not allowed.

    >>> evaluate("8 / (3 - 8 / 3)")
    Evaluation(value=Fraction(24, 1), numbers=(3, 3, 8, 8))
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression too long ({len(text)} characters, at most {MAX_LENGTH})")
    parser = _Parser(_tokenize(text))
    value = parser.parse()
    return Evaluation(value=value, numbers=tuple(sorted(parser.numbers)))
