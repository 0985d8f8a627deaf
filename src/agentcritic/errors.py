"""The one base class of the errors a user can cause.

A bad config, bad data, a folder that cannot be used, an unreachable LLM server or a model that
answered nonsense raises a subclass of :class:`AgentCriticError` whose message says what was wrong
and what to do. The ``agentcritic`` command prints that message as one paragraph and exits with
status 2; anything else that escapes a command is a bug and keeps its traceback.

Each area keeps its own subclass beside its code (``ConfigError`` in ``config.py``, ``EnvError`` in
``envs/base.py`` …). A subclass also derives from the builtin it used to be (``ValueError`` or
``RuntimeError``), so ``except ValueError`` in callers keeps working.

This module imports nothing from the package, so every module may import it.
"""

from __future__ import annotations


class AgentCriticError(Exception):
    """An error a user can cause and fix; the message says what was wrong and what to do."""


__all__ = ["AgentCriticError"]
