"""Evaluation of when-to-ask methods under budgets (selfreg.md Evaluation)."""

from __future__ import annotations


class EvalHelperError(ValueError):
    """Inputs the evaluation cannot use (a run folder without episodes, a PRM missing); says which."""
