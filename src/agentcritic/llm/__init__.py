"""Language models behind one API.

```python
lm = agentcritic.llm.load("smollm2")                          # embedded default, offline
lm = agentcritic.llm.load("hf", path="/models/my-causal-lm")   # any local HF causal LM (or .gguf)
lm = agentcritic.llm.load("openai", base_url="http://localhost:8000/v1", model="qwen")
lm = agentcritic.llm.load("llamacpp")                          # needs agentcritic[llamacpp]
lm.generate(messages, n=1, temperature=0.0, max_tokens=128, stop=None, seed=None) -> list[str]
lm.score(messages, candidates) -> list[float]    # log p(candidate | messages), summed over tokens
lm.usage -> Usage(calls, prompt_tokens, completion_tokens, seconds)
```

``scripted`` answers from canned data and exists for tests only. Backends are imported on use, so
``import agentcritic.llm`` pulls in neither torch, transformers nor httpx.
"""

from __future__ import annotations

import importlib
from typing import Any

from agentcritic.llm.base import LM, LLMError, Message, Messages, Usage, as_messages, render_plain

# name → "module:factory"; the module is imported only when that backend is loaded.
BACKENDS: dict[str, str] = {
    "smollm2": "agentcritic.llm.hf:load_smollm2",
    "hf": "agentcritic.llm.hf:load_hf",
    "openai": "agentcritic.llm.openai_compat:OpenAICompatLM",
    "llamacpp": "agentcritic.llm.llamacpp:LlamaCppLM",
    "scripted": "agentcritic.llm.scripted:ScriptedLM",
}

DEFAULT_BACKEND = "smollm2"


def load(name: str = DEFAULT_BACKEND, **kwargs: Any) -> LM:
    """Load the backend ``name`` with backend-specific keyword arguments.

    - ``smollm2``: ``threads``, ``cache_dir``, ``template``, ``score_cache_size``
    - ``hf``: ``path`` (folder or ``.gguf``), ``gguf_file``, ``threads``, ``template``, ``device``
    - ``openai``: ``base_url``, ``model``, ``api_key``, ``timeout``, ``max_retries``, ``backoff``,
      ``tokenizer``/``chat_template`` (for ``score``)
    - ``llamacpp``: ``model_path`` or ``path`` (default: the smollm2 GGUF), ``n_ctx``, ``threads``,
      ``score_with``
    - ``scripted``: ``answers`` (list or dict), ``scores`` (dict or callable) — tests only

    Raises ``ValueError`` for an unknown name.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown LLM backend {name!r}; valid backends are: {', '.join(sorted(BACKENDS))}")
    module, _, attr = BACKENDS[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(**kwargs)


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "LM", "LLMError", "Message", "Messages", "Usage",
           "as_messages", "load", "render_plain"]
