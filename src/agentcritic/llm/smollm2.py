"""``load("smollm2")``: the embedded SmolLM2-135M-Instruct on its fastest route that holds the accuracy.

Scoring (``choose`` mode) runs on transformers (:class:`~agentcritic.llm.hf.HFLM`, the tree-attention
scorer) in bfloat16 where the CPU multiplies it natively, checked against float32 at load;
generation (``generate`` mode, reflections, intents) runs on llama.cpp
(:class:`~agentcritic.llm.llamacpp.LlamaCppLM`) on the same GGUF. This module joins the two; each
stays usable alone (the ``hf`` and ``llamacpp`` backends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcritic.llm.base import LLMOptionsError
from agentcritic.llm.hf import SMOLLM2_CACHE_NAME, HFLM, materialize_gguf, model_cache_dir, smollm2_gguf_path


GENERATORS = ("llamacpp", "torch")


def load_smollm2(cache_dir: str | Path | None = None, generate_with: str = "llamacpp", dtype: str = "auto",
                 **kw: Any) -> HFLM:
    """``load("smollm2")``: SmolLM2-135M-Instruct on its fastest route that holds the accuracy.

    It scores (``choose`` mode) with transformers on the GGUF de-quantised once into the user cache,
    in ``dtype`` (``auto``: bfloat16 where the CPU multiplies it natively, checked against float32 by
    the load-time probe; ``float32`` is the reference). It generates (``generate`` mode, reflections,
    intents) with llama.cpp on the same GGUF (``generate_with="llamacpp"``, about 3x torch's tokens/s
    here), or with torch (``"torch"``, the reference and what LoRA training uses).
    """
    if generate_with not in GENERATORS:
        raise LLMOptionsError(f"smollm2: generate_with={generate_with!r} is not one of {list(GENERATORS)}; "
                              "llamacpp is the fast route, torch the reference (--set llm.generate_with=torch)")
    target = Path(cache_dir) if cache_dir else model_cache_dir(SMOLLM2_CACHE_NAME)
    folder = materialize_gguf(smollm2_gguf_path(), target)
    lm = HFLM(folder, dtype=dtype, **kw)
    lm.backend = "smollm2"
    if generate_with == "llamacpp":
        from agentcritic.llm.llamacpp import LlamaCppLM

        # the whole trained context, as torch generation has it (a longer prompt is an error there too)
        lm.generate_through(LlamaCppLM(smollm2_gguf_path(), n_ctx=8192, threads=kw.get("threads"), score_with=None))
    return lm
