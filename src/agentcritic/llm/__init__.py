"""Language models behind one API.

```python
lm = agentcritic.llm.load("smollm2")                          # embedded default, offline
lm = agentcritic.llm.load("hf", path="/models/my-causal-lm")   # any local HF causal LM (or .gguf)
lm = agentcritic.llm.load("openai", base_url="http://localhost:8000/v1", model="qwen")
lm = agentcritic.llm.load("llamacpp")                          # needs agentcritic[llamacpp]
lm.generate(messages, n=1, temperature=0.0, max_tokens=128, stop=None, seed=None) -> list[str]
lm.generate(messages, pattern=r"Action: (?:look|go north)")  # constrained: each reply fully matches
lm.score(messages, candidates) -> list[float]    # log p(candidate | messages), summed over tokens
lm.usage -> Usage(calls, prompt_tokens, completion_tokens, seconds)
```

``scripted`` answers from canned data and exists for tests only. Backends are imported on use, so
``import agentcritic.llm`` pulls in neither torch, transformers nor httpx.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any

from agentcritic.llm.base import (
    LM,
    ConstraintUnsupported,
    LLMCalls,
    LLMError,
    LLMFailureRateError,
    LLMOptionsError,
    Message,
    Messages,
    Usage,
    as_messages,
    count_llm_calls,
    process_llm_calls,
    render_plain,
)

# name → "module:factory"; the module is imported only when that backend is loaded.
BACKENDS: dict[str, str] = {
    "smollm2": "agentcritic.llm.smollm2:load_smollm2",
    "hf": "agentcritic.llm.hf:load_hf",
    "openai": "agentcritic.llm.openai_compat:OpenAICompatLM",
    "llamacpp": "agentcritic.llm.llamacpp:LlamaCppLM",
    "scripted": "agentcritic.llm.scripted:ScriptedLM",
}

DEFAULT_BACKEND = "smollm2"


def load(name: str = DEFAULT_BACKEND, **kwargs: Any) -> LM:
    """Load the backend ``name`` with backend-specific keyword arguments.

    - ``smollm2``: ``threads``, ``cache_dir``, ``template``, ``score_cache_size``, ``dtype``
      (``"float32"``, the reference; ``"bfloat16"``; ``"auto"``: bfloat16 where the CPU has AMX or
      AVX512-BF16), ``probe_tolerance`` (the load-time check of a non-float32 dtype against float32),
      ``kv_block`` (64: the prompt's KV in fixed blocks, so a score never depends on what was scored
      before; 0: reuse any shared head, about 20 % faster a step and history-dependent in bfloat16)
    - ``hf``: ``path`` (folder or ``.gguf``), ``gguf_file``, ``threads``, ``template``, ``device``, ``dtype``
    - ``openai``: ``base_url``, ``model``, ``api_key``, ``timeout``, ``max_retries``, ``backoff``,
      ``tokenizer``/``chat_template`` (for ``score``)
    - ``llamacpp``: ``model_path`` or ``path`` (default: the smollm2 GGUF), ``n_ctx``, ``threads``,
      ``score_with``
    - ``scripted``: ``answers`` (list or dict), ``scores`` (dict or callable) — tests only

    Raises :class:`LLMOptionsError` (a ``ValueError``) for an unknown name or option.
    """
    factory = _factory(name)
    valid = _options(factory)
    unknown = sorted(set(kwargs) - set(valid)) if valid is not None else []
    if unknown:
        raise LLMOptionsError(
            f"LLM backend {name!r} takes no option {', '.join(map(repr, unknown))}; its options are {valid}. "
            "Correct or remove it in the config's llm options (a [llm] table or --set llm.NAME=VALUE)"
        )
    return factory(**kwargs)


def _factory(name: str) -> Callable[..., LM]:
    if name not in BACKENDS:
        raise LLMOptionsError(f"unknown LLM backend {name!r}; valid backends are: {', '.join(sorted(BACKENDS))}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _options(factory: Callable[..., Any], optional_only: bool = False) -> list[str] | None:
    """The keyword arguments ``factory`` takes; None when it takes any. A factory function whose
    ``**kw`` go to the class it returns (``load_hf`` → ``HFLM``) also takes that class's optional
    ones (its required ones are what the factory fills in)."""
    target = factory.__init__ if isinstance(factory, type) else factory
    params = list(inspect.signature(target).parameters.values())
    names = [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and not (optional_only and p.default is p.empty)]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return names
    returned = typing.get_type_hints(factory).get("return") if not isinstance(factory, type) else None
    if not isinstance(returned, type):
        return None
    more = _options(returned, optional_only=True)
    return None if more is None else names + [n for n in more if n not in names]


__all__ = ["BACKENDS", "ConstraintUnsupported", "DEFAULT_BACKEND", "LM", "LLMCalls",
           "LLMError", "LLMFailureRateError", "LLMOptionsError",
           "Message", "Messages", "Usage", "as_messages", "count_llm_calls", "load", "process_llm_calls",
           "render_plain"]
