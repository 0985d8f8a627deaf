"""Constrained decoding on the torch path: every reply a full match of a regular expression.

:class:`PatternLogitsProcessor` is a transformers logits processor. At each step it keeps only the
tokens whose text extends the reply so far to a prefix of some match of the pattern (the ``regex``
package's partial matching: ``fullmatch(text, partial=True)``), and lets an end-of-sequence token
through only once the reply is a complete match. Since every kept prefix can still be completed,
decoding never walks into a dead end; a reply is cut short only by ``max_tokens``.

Cost: the tokens are tried in order of their logits; greedy decoding stops at the first that fits
(usually one or two regex calls a step); sampling tries the ``top_k`` best and draws among those
that fit, renormalised (a truncation like top-k sampling). Only when none of them fits is the rest of
the vocabulary tried. A token whose text is not whole characters (a piece of a UTF-8 sequence) or is
a special token never extends a reply, so the reply is exactly the concatenation of its tokens'
texts (:meth:`PatternLogitsProcessor.decode`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import regex
import torch
from transformers import LogitsProcessor

from agentcritic.llm.base import LLMOptionsError

#: tokens tried (in order of logit) before the whole vocabulary is searched, when sampling
TOP_K = 64

_PIECES: weakref.WeakKeyDictionary[Any, list[str | None]] = weakref.WeakKeyDictionary()


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled, or :class:`LLMOptionsError` saying why it is not a regular expression."""
    try:
        return regex.compile(pattern)
    except regex.error as e:
        raise LLMOptionsError(f"the reply pattern {pattern[:200]!r} is not a valid regular expression ({e}); "
                              "give a regular expression that a whole reply must match") from e


def token_pieces(tokenizer: Any) -> list[str | None]:
    """The text each token id adds to a reply; ``None`` for special tokens and for tokens that are not
    whole characters (computed once per tokenizer)."""
    cached = _PIECES.get(tokenizer)
    if cached is not None:
        return cached
    special = set(tokenizer.all_special_ids)
    special |= {i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special}
    pieces: list[str | None] = []
    for i, tok in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        text = None if i in special or tok is None else tokenizer.convert_tokens_to_string([tok])
        pieces.append(text if text and "\ufffd" not in text else None)
    _PIECES[tokenizer] = pieces
    return pieces


class PatternLogitsProcessor(LogitsProcessor):
    """Masks the logits so that each reply (the tokens after ``prompt_len``) fully matches ``pattern``.

    Args:
        tokenizer: the model's tokenizer (its tokens' texts are what is matched).
        pattern: a regular expression a whole reply must match.
        prompt_len: tokens of the prompt in ``input_ids``; the reply is what follows.
        eos_ids: the end-of-sequence token ids (allowed only on a complete match).
        greedy: keep only the best token that fits (decoding is argmax anyway; this skips the rest).
        top_k: tokens tried before searching the whole vocabulary (sampling).
    """

    def __init__(self, tokenizer: Any, pattern: str, prompt_len: int, eos_ids: Sequence[int],
                 greedy: bool, top_k: int = TOP_K) -> None:
        self.regex = compile_pattern(pattern)
        self.pieces = token_pieces(tokenizer)
        self.prompt_len = int(prompt_len)
        self.eos_ids = set(int(i) for i in eos_ids)
        self.greedy = bool(greedy)
        self.top_k = max(1, int(top_k))

    def decode(self, ids: Sequence[int]) -> str:
        """The reply text of generated token ids (up to the first end-of-sequence token)."""
        out = []
        for i in ids:
            if i in self.eos_ids:
                break
            out.append(self.pieces[i] or "")
        return "".join(out)

    def _fits(self, text: str) -> bool:
        return self.regex.fullmatch(text, partial=True) is not None

    def _allowed(self, text: str, order: list[int]) -> list[int]:
        complete = (m := self.regex.fullmatch(text)) is not None and not m.partial
        allowed: list[int] = []
        for tok in order:
            if tok in self.eos_ids:
                ok = complete
            else:
                piece = self.pieces[tok] if tok < len(self.pieces) else None
                ok = piece is not None and self._fits(text + piece)
            if ok:
                allowed.append(tok)
                if self.greedy:
                    break
        return allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        masked = torch.full_like(scores, float("-inf"))
        for row in range(scores.shape[0]):
            generated = input_ids[row, self.prompt_len:].tolist()
            if any(t in self.eos_ids for t in generated):
                masked[row] = scores[row]  # this sample has ended; transformers pads it
                continue
            text = self.decode(generated)
            order = torch.argsort(scores[row], descending=True).tolist()
            allowed = self._allowed(text, order[:self.top_k]) or self._allowed(text, order[self.top_k:])
            if not allowed:  # a complete match with no end token the model knows: end anyway
                allowed = sorted(self.eos_ids)[:1] or order[:1]
            idx = torch.tensor(allowed, device=scores.device)
            masked[row, idx] = scores[row, idx]
        return masked
