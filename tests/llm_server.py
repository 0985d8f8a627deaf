"""A small OpenAI-compatible server the test suite owns, serving a real model through ``hf``.

It implements ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (with
``echo`` + ``logprobs`` in OpenAI's legacy format: ``tokens``, ``token_logprobs``, ``text_offset``).

Fault modes are chosen per request by a path prefix, ``/{mode}/{tag}/v1/...``, so one server serves
every test; ``tag`` keys the attempt counter (``app.state.attempts[(mode, tag)]``):

- ``ok``: answer normally
- ``e500``: always HTTP 500
- ``hang``: sleep ``app.state.hang_seconds`` before answering (the client should time out first)
- ``badjson``: HTTP 200 with a body that is not JSON
- ``r429``: HTTP 429 (``Retry-After: 0``) for the first two attempts of each tag, then answer
- ``nolp``: answer ``/v1/completions`` with ``logprobs: null`` (a server that cannot score)
- ``nocomp``: ``/v1/completions`` is missing (HTTP 404)

Also a helper, :func:`make_tiny_llama`, that writes a tiny random Llama with a real byte-level BPE
tokenizer and a ChatML chat template to a folder, for fast tests of the real code paths.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.
import asyncio
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "You are in the kitchen. There is a fridge, a table and a door to the north.",
    "Action: go north. Action: open fridge. Action: take apple. Action: look. Action: inventory.",
    "Observation: you see a red apple on the table. The door is closed.",
    "Use numbers and basic arithmetic operations (+ - * /) to obtain 24. Input: 4 4 6 8",
    "What is the next action? Think step by step, then answer with Action: followed by the action.",
]


def make_tiny_llama(folder: str | Path, seed: int = 0, vocab_size: int = 400) -> Path:
    """Write a tiny random LlamaForCausalLM + byte-level BPE tokenizer (ChatML template) to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    specials = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>")
    fast.chat_template = CHATML
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger logits than the default init, so log-probs are far from uniform
        model.lm_head.weight.mul_(20)
    model.save_pretrained(folder)
    return folder


def create_app(lm: Any, model_name: str = "tiny") -> Any:
    """The FastAPI app serving ``lm`` (an :class:`agentcritic.llm.hf.HFLM`)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse, PlainTextResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI()
    app.state.attempts = Counter()
    app.state.hang_seconds = 2.0

    async def fault(mode: str, tag: str) -> Any:
        app.state.attempts[(mode, tag)] += 1
        n = app.state.attempts[(mode, tag)]
        if mode == "e500":
            return PlainTextResponse("internal error: the model fell over", status_code=500)
        if mode == "hang":
            await asyncio.sleep(app.state.hang_seconds)
            return PlainTextResponse("too late", status_code=200)
        if mode == "badjson":
            return PlainTextResponse("{'choices': [oops", status_code=200, media_type="application/json")
        if mode == "r429" and n <= 2:
            return JSONResponse({"error": {"message": "rate limited"}}, status_code=429,
                                headers={"Retry-After": "0"})
        if mode not in ("ok", "r429", "nolp", "nocomp"):
            raise HTTPException(400, f"unknown fault mode {mode}")
        return None

    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model"}]}

    def chat(body: dict[str, Any]) -> dict[str, Any]:
        before = lm.usage
        texts = lm.generate(body["messages"], n=int(body.get("n", 1)),
                            temperature=float(body.get("temperature", 1.0)),
                            max_tokens=int(body.get("max_tokens") or 16), stop=body.get("stop"),
                            seed=body.get("seed"))
        spent = lm.usage - before
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                             "finish_reason": "stop"} for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": spent.prompt_tokens, "completion_tokens": spent.completion_tokens,
                          "total_tokens": spent.prompt_tokens + spent.completion_tokens}}

    def completions(body: dict[str, Any], no_logprobs: bool) -> dict[str, Any]:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        max_tokens = int(body.get("max_tokens", 16))
        choices, n_prompt = [], 0
        for i, prompt in enumerate(prompts):
            gen = lm.generate_text(prompt, max_tokens=max_tokens, temperature=0.0)[0] if max_tokens else ""
            text = (prompt + gen) if body.get("echo") else gen
            logprobs = None
            if body.get("logprobs") is not None and not no_logprobs:
                logprobs = legacy_logprobs(lm, text) if body.get("echo") else None
            n_prompt += len(lm.encode(prompt))
            choices.append({"index": i, "text": text, "logprobs": logprobs, "finish_reason": "length"})
        return {"id": "cmpl-test", "object": "text_completion", "created": int(time.time()),
                "model": model_name, "choices": choices,
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": 0, "total_tokens": n_prompt}}

    @app.get("/v1/models")
    async def plain_models() -> Any:
        return models()

    @app.get("/{mode}/{tag}/v1/models")
    async def fault_models(mode: str, tag: str) -> Any:
        return await fault(mode, tag) or models()

    @app.post("/v1/chat/completions")
    async def plain_chat(request: Request) -> Any:
        return await run_in_threadpool(chat, await request.json())

    @app.post("/{mode}/{tag}/v1/chat/completions")
    async def fault_chat(mode: str, tag: str, request: Request) -> Any:
        return await fault(mode, tag) or await run_in_threadpool(chat, await request.json())

    @app.post("/v1/completions")
    async def plain_completions(request: Request) -> Any:
        return await run_in_threadpool(completions, await request.json(), False)

    @app.post("/{mode}/{tag}/v1/completions")
    async def fault_completions(mode: str, tag: str, request: Request) -> Any:
        early = await fault(mode, tag)
        if early is not None:
            return early
        if mode == "nocomp":
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return await run_in_threadpool(completions, await request.json(), mode == "nolp")

    return app


def legacy_logprobs(lm: Any, text: str) -> dict[str, Any]:
    """OpenAI's legacy completions ``logprobs`` object for ``text`` (every token echoed)."""
    entries = lm.text_logprobs(text)
    ids = [i for i, _ in entries]
    tokens, offsets = [], []
    for k in range(len(ids)):
        # the character offset of token k = the length of the text the tokens before it decode to
        offsets.append(len(lm.tokenizer.decode(ids[:k])))
        tokens.append(lm.tokenizer.decode([ids[k]]))
    return {"tokens": tokens, "token_logprobs": [lp for _, lp in entries], "text_offset": offsets,
            "top_logprobs": [None] + [{t: lp} for t, (_, lp) in zip(tokens[1:], entries[1:])]}


class ServerThread:
    """Runs ``app`` with uvicorn in a daemon thread on 127.0.0.1 and a free port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test LLM server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
