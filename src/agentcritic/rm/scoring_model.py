"""What every scoring model shares: a backbone with a one-output head and the text pipeline.

:class:`ScoringModel` is the base of the outcome reward model
(:class:`~agentcritic.rm.reward_model.RewardModel`), the process reward model
(:class:`~agentcritic.rm.process_reward_model.ProcessRewardModel`) and the helper's classifiers.
It is a Hugging Face ``*ForSequenceClassification`` with one output (see
:mod:`agentcritic.rm.backbone` for why) plus the machinery that turns texts into model input the
same way at training, scoring and serving time:

- the texts come from :mod:`agentcritic.rendering` (intent line, first observation, steps through
  the env's ``rm_observation``); models saved with the older plain rendering (settings
  ``render="steps"``) keep reading raw observations;
- every backbone reads one text (TRL's layout); decoders pool the last token.
  ``settings.pair_input`` makes an encoder read the text pair ``[CLS] intent [SEP] trajectory [SEP]``
  instead (models saved that way keep it);
- too long for ``max_length`` *tokens*: keep the intent (capped at a quarter of the budget), the
  first observation (capped at a third), and as many of the last steps as fit, with a
  ``[... N earlier steps cut ...]`` marker between them (armap.md §3).

``save_pretrained`` writes a standard model folder (+ tokenizer + ``agentcritic_rm.json`` with these
text settings) that ``AutoModelForSequenceClassification.from_pretrained`` loads as is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.rendering import CUT_MARKER, with_intent
from agentcritic.rm.backbone import (
    DEFAULT_BACKBONE,
    BackboneError,
    LoraSettings,
    Pooling,
    is_peft,
    load_backbone,
    load_tokenizer,
    plain_model,
)
from agentcritic.store import atomic_write

log = logging.getLogger("agentcritic.rm")

SETTINGS_FILE = "agentcritic_rm.json"
FORMAT_VERSION = 1

#: ``settings.render`` of models that read raw observations, and every value this version reads
RAW_RENDERINGS = ("steps", "render_steps")
KNOWN_RENDERINGS = ("env", "rm_steps_text", *RAW_RENDERINGS)

M = TypeVar("M", bound="ScoringModel")
Feature = dict[str, list[int]]


@dataclass
class TextSettings:
    """How text becomes model input; saved with the model so scoring matches training."""

    max_length: int = 512
    pair_input: bool = False  # True: (intent, trajectory) as a segment pair (encoders); models saved so keep it
    step_marker: str = "Action:"
    cut_marker: str = CUT_MARKER
    max_intent_fraction: float = 0.25
    max_head_fraction: float = 0.34
    render: str = "env"  # "steps": saved before reward models read the env's view; reads raw observations

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class ModelFolderError(AgentCriticError, ValueError):
    """A folder that is not a saved agentcritic model of the kind asked for."""


# ----------------------------------------------------------------------------------- text fitting
def split_blocks(text: str, marker: str) -> tuple[str, list[str]]:
    """Split a rendered trajectory into its head (before the first action) and its steps."""
    head: list[str] = []
    steps: list[list[str]] = []
    for line in text.split("\n"):
        if line.startswith(marker):
            steps.append([line])
        elif steps:
            steps[-1].append(line)
        else:
            head.append(line)
    return "\n".join(head), ["\n".join(s) for s in steps]


class TextFitter:
    """Token-aware truncation that keeps the intent, the start and the end of a trajectory."""

    def __init__(self, tokenizer: Any, settings: TextSettings) -> None:
        self.tok = tokenizer
        self.s = settings
        self._fast = bool(getattr(tokenizer, "is_fast", False))

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(e) for e in enc]

    def keep_tokens(self, text: str, k: int, from_end: bool) -> str:
        """The first (or last) ``k`` tokens of ``text``, cut on a token boundary of the original string."""
        if k <= 0:
            return ""
        if self._fast:
            enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            offsets = enc["offset_mapping"]
            if len(offsets) <= k:
                return text
            return text[offsets[-k][0] :] if from_end else text[: offsets[k - 1][1]]
        ids = self.tok(text, add_special_tokens=False, verbose=False)["input_ids"]  # slow tokenizers
        if len(ids) <= k:
            return text
        piece = ids[-k:] if from_end else ids[:k]
        return self.tok.decode(piece)

    def fit_body(self, text: str, budget: int) -> str:
        """``text`` within ``budget`` tokens: head (capped), cut marker, then the last steps that fit."""
        return self.fit_bodies([text], [budget])[0]

    def fit_bodies(self, texts: Sequence[str], budgets: Sequence[int]) -> list[str]:
        """:meth:`fit_body` for many texts, with one batched tokenizer call for all their blocks."""
        split = [split_blocks(t, self.s.step_marker) for t in texts]
        flat: list[str] = []
        for head, steps in split:
            flat.extend([head, *steps, self.s.cut_marker.format(n=len(steps) or "some")])
        counts = iter(self.count(flat))
        out = []
        for (head, steps), text, budget in zip(split, texts, budgets, strict=True):
            n_head = next(counts)
            n_steps = [next(counts) for _ in steps]
            n_marker = next(counts)
            out.append(self._fit_one(text, budget, head, steps, n_head, n_steps, n_marker))
        return out

    def _fit_one(
        self, text: str, budget: int, head: str, steps: list[str], n_head: int, n_steps: list[int], n_marker: int
    ) -> str:
        if budget <= 0:
            return ""
        if not steps:  # nothing to split on: keep the start and the end
            n_start = int(budget * self.s.max_head_fraction)
            start = self.keep_tokens(text, n_start, from_end=False)
            end = self.keep_tokens(text[len(start) :], max(0, budget - n_start - n_marker), from_end=True)
            return "\n".join(p for p in (start, self.s.cut_marker.format(n="some"), end) if p)
        if n_head + sum(n_steps) <= budget:
            return text
        head_cap = int(budget * self.s.max_head_fraction)
        if n_head > head_cap:
            head, n_head = self.keep_tokens(head, head_cap, from_end=False), head_cap
        room = budget - n_head - n_marker
        kept: list[str] = []
        for step, n in zip(reversed(steps), reversed(n_steps), strict=True):
            if n > room:
                break
            kept.insert(0, step)
            room -= n
        if not kept and room > 0:  # even the last step alone is too long: keep its end
            kept = [self.keep_tokens(steps[-1], room, from_end=True)]
            n_cut = len(steps) - 1
        else:
            n_cut = len(steps) - len(kept)
        if n_cut == 0:
            return "\n".join(p for p in (head, *kept) if p)
        marker = self.s.cut_marker.format(n=n_cut)
        return "\n".join(p for p in (head, marker, *kept) if p)


# ----------------------------------------------------------------------------------- batching
#: largest share of padded positions a CPU scoring batch may hold (see ScoringModel.score_features)
CPU_MAX_PADDING = 0.2


def length_batches(lengths: Sequence[int], batch_size: int, max_padding: float | None = None) -> list[tuple[int, int]]:
    """``[lo, hi)`` spans over ``lengths`` (sorted longest first) of at most ``batch_size`` items.

    With ``max_padding`` a span also ends before an item shorter than ``(1 - max_padding)`` times
    the span's first (longest) item, so no batch pads more than that share of a row.
    """
    spans: list[tuple[int, int]] = []
    lo = 0
    for i, n in enumerate(lengths):
        if i > lo and (i - lo >= batch_size or (max_padding is not None and n < (1.0 - max_padding) * lengths[lo])):
            spans.append((lo, i))
            lo = i
    if lengths:
        spans.append((lo, len(lengths)))
    return spans


# ----------------------------------------------------------------------------------- the model
class ScoringModel:
    """Backbone + one-output head + the text pipeline; base of RewardModel and ProcessRewardModel."""

    kind: ClassVar[str] = "base"
    problem_type: ClassVar[str | None] = None

    model: Any
    tokenizer: Any
    settings: TextSettings
    info: dict[str, Any]

    def __init__(
        self,
        backbone: str | os.PathLike[str] | None = DEFAULT_BACKBONE,
        *,
        max_length: int = 512,
        pooling: Pooling = "auto",
        lora: LoraSettings | dict[str, Any] | None = None,
        seed: int = 0,
        device: str | None = None,
        dtype: Any = None,
    ) -> None:
        model, tokenizer, info = load_backbone(
            backbone, pooling=pooling, lora=lora, problem_type=self.problem_type, seed=seed, dtype=dtype
        )
        settings = TextSettings(max_length=int(max_length), pair_input=info.pair_input)
        self._setup(
            model,
            tokenizer,
            settings,
            {"backbone": info.name, "encoder": info.encoder, "pooling": info.pooling, **info.extra},
        )
        if device is not None:
            self.to(device)

    def _setup(
        self,
        model: Any,
        tokenizer: Any,
        settings: TextSettings,
        info: dict[str, Any],
    ) -> None:
        limit = getattr(model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and settings.max_length > limit:
            raise BackboneError(
                f"max_length={settings.max_length} exceeds the backbone's {limit} positions; use max_length <= {limit}"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.info = info
        self.fitter = TextFitter(tokenizer, settings)
        self.model.eval()

    # -------------------------------------------------------------------------- properties
    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    def to(self: M, device: Any) -> M:
        self.model.to(device)
        return self

    def parameters(self) -> Iterable[Any]:
        return self.model.parameters()

    @property
    def raw_observations(self) -> bool:
        """Whether trajectories are rendered with raw observations (models saved before reward
        models read the env's view of them); see :func:`agentcritic.rendering.render`."""
        return self.settings.render in RAW_RENDERINGS

    # -------------------------------------------------------------------------- text → ids
    def _pair_mode(self, first: str | None) -> bool:
        return self.settings.pair_input and first is not None

    def _single_text(self, first: str | None, second: str) -> str:
        if first is None:
            return second
        return with_intent(first, second)

    def encode_texts(self, items: Sequence[tuple[str | None, str]]) -> list[Feature]:
        """Token ids for (first, second) text items; ``first`` None means a single text."""
        tok, limit = self.tokenizer, self.settings.max_length
        out: list[Feature | None] = [None] * len(items)
        pair_idx = [i for i, (f, _) in enumerate(items) if self._pair_mode(f)]
        single_idx = [i for i, (f, _) in enumerate(items) if not self._pair_mode(f)]
        over: list[int] = []
        totals: dict[int, int] = {}
        if pair_idx:
            enc = tok([items[i][0] for i in pair_idx], [items[i][1] for i in pair_idx], verbose=False)
            self._collect(enc, pair_idx, out, over, limit, totals)
        if single_idx:
            enc = tok([self._single_text(*items[i]) for i in single_idx], verbose=False)
            self._collect(enc, single_idx, out, over, limit, totals)
        if over:
            fitted = self._fit_many([items[i] for i in over], [totals[i] for i in over])
            pair_over = [j for j, i in enumerate(over) if self._pair_mode(items[i][0])]
            single_over = [j for j, i in enumerate(over) if not self._pair_mode(items[i][0])]
            if pair_over:
                enc = tok(
                    [fitted[j][0] for j in pair_over],
                    [fitted[j][1] for j in pair_over],
                    truncation="longest_first",
                    max_length=limit,
                    verbose=False,
                )
                self._collect(enc, [over[j] for j in pair_over], out, [], limit)
            if single_over:
                enc = tok(
                    [self._single_text(*fitted[j]) for j in single_over],
                    truncation=True,
                    max_length=limit,
                    verbose=False,
                )
                self._collect(enc, [over[j] for j in single_over], out, [], limit)
        return out  # type: ignore[return-value]

    @staticmethod
    def _collect(
        enc: Any,
        idx: list[int],
        out: list[Feature | None],
        over: list[int],
        limit: int,
        totals: dict[int, int] | None = None,
    ) -> None:
        ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        for k, i in enumerate(idx):
            if len(ids[k]) > limit:
                over.append(i)
                if totals is not None:
                    totals[i] = len(ids[k])
                continue
            feat: Feature = {"input_ids": ids[k]}
            if types is not None:
                feat["token_type_ids"] = types[k]
            out[i] = feat

    def _fit(self, first: str | None, second: str) -> tuple[str | None, str]:
        """Shorten (first, second) so that it fits ``max_length`` tokens (see module docstring)."""
        return self._fit_many([(first, second)])[0]

    def _fit_many(
        self, items: Sequence[tuple[str | None, str]], totals: Sequence[int] | None = None
    ) -> list[tuple[str | None, str]]:
        """:meth:`_fit` for many items; ``totals`` (their full token counts) saves a tokenizer pass."""
        limit = self.settings.max_length
        firsts = [f for f, _ in items if f is not None]
        n_firsts = iter(self.fitter.count(firsts))
        new_firsts: list[str | None] = []
        budgets: list[int] = []
        for k, (first, second) in enumerate(items):
            pair = self._pair_mode(first)
            budget = limit - self.tokenizer.num_special_tokens_to_add(pair=pair)
            if first is not None:
                n_first = next(n_firsts)
                if pair and totals is not None:
                    n_body = totals[k] - self.tokenizer.num_special_tokens_to_add(pair=True) - n_first
                else:
                    n_body = self.fitter.count([second])[0]
                # the intent keeps what the trajectory leaves over, and at least its share of the budget
                cap = max(1, int(limit * self.settings.max_intent_fraction), budget - n_body)
                if n_first > cap:
                    first = self.fitter.keep_tokens(first, cap, from_end=False)
                    n_first = cap
                if not pair:  # the template adds words around the intent
                    n_first = self.fitter.count([self._single_text(first, "")])[0] + 2  # +2: merge slack
                budget -= n_first
            new_firsts.append(first)
            budgets.append(budget)
        bodies = self.fitter.fit_bodies([second for _, second in items], budgets)
        return list(zip(new_firsts, bodies, strict=True))

    def model_texts(self, items: Sequence[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
        """The (possibly cut) texts the model reads, before tokenisation — e.g. to feed other tools."""
        out = []
        for first, second in items:
            if self._pair_mode(first):
                n = len(self.tokenizer(first, second, verbose=False)["input_ids"])
            else:
                n = len(self.tokenizer(self._single_text(first, second), verbose=False)["input_ids"])
            out.append(self._fit(first, second) if n > self.settings.max_length else (first, second))
        return out

    def collate(self, feats: Sequence[Feature], device: Any = None) -> dict[str, Any]:
        """Right-pad to the longest sequence of the batch (not to ``max_length``)."""
        import torch

        n = len(feats)
        width = max(len(f["input_ids"]) for f in feats)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        has_types = "token_type_ids" in feats[0]
        types = torch.zeros((n, width), dtype=torch.long) if has_types else None
        for i, f in enumerate(feats):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"], dtype=torch.long)
            mask[i, :k] = 1
            if types is not None:
                types[i, :k] = torch.tensor(f["token_type_ids"], dtype=torch.long)
        batch = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            batch["token_type_ids"] = types
        if device is not None:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        return batch

    # -------------------------------------------------------------------------- scoring
    @property
    def scorer(self) -> Any:
        """``nn.Module`` computing one logit per row (the trainers wrap this one with Accelerate)."""
        from agentcritic.rm.backbone import sequence_scorer

        cached = getattr(self, "_scorer", None)
        if cached is None or cached.model is not self.model:
            cached = self._scorer = sequence_scorer(self.model)
        return cached

    def logits(self, batch: dict[str, Any], scorer: Any = None) -> Any:
        """One logit per row of a collated batch (gradients flow; used by the trainers)."""
        return (scorer or self.scorer)(**batch)

    def _transform(self, logits: Any) -> Any:
        return logits

    def score_features(
        self, feats: Sequence[Feature], batch_size: int = 32, raw: bool = False, progress: str | None = None
    ) -> np.ndarray:
        """Scores for tokenised inputs: length-sorted batches, no grad, input order restored.

        ``raw`` returns the head's logits even where ``score`` applies a link (the PRM's sigmoid);
        ``progress``: a progress bar over the batches with this label (None: none).
        """
        import torch

        n = len(feats)
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        order = sorted(range(n), key=lambda i: len(feats[i]["input_ids"]), reverse=True)
        was_training = self.model.training
        self.model.eval()
        device = self.device
        # On CPU the cost is the padded token count and a batch of one is already efficient, so a
        # batch closes when padding would pass CPU_MAX_PADDING (a few mixed-length items, as a
        # server's micro-batch holds, were 30 % slower padded together than scored one by one).
        max_padding = CPU_MAX_PADDING if device.type == "cpu" else None
        chunks = length_batches([len(feats[i]["input_ids"]) for i in order], batch_size, max_padding)
        try:
            if progress:
                from tqdm.auto import tqdm

                chunks = tqdm(chunks, desc=progress, unit="batch", leave=False)
            with torch.inference_mode():
                for lo, hi in chunks:
                    chunk = order[lo:hi]
                    batch = self.collate([feats[i] for i in chunk], device)
                    values = self.logits(batch).float()
                    if not raw:
                        values = self._transform(values)
                    out[chunk] = values.cpu().numpy()
        finally:
            if was_training:
                self.model.train()
        return out

    def score_texts(self, items: Sequence[tuple[str | None, str]], batch_size: int = 32) -> np.ndarray:
        with self.scoring_lock:
            return self.score_features(self.encode_texts(items), batch_size=batch_size)

    @property
    def scoring_lock(self) -> Any:
        """Held while scoring: threads of one worker (``--concurrency``) share this model, and a fast
        tokenizer refuses to be used by two at once."""
        return self.__dict__.setdefault("_scoring_lock", threading.RLock())

    # -------------------------------------------------------------------------- persistence
    def _settings_doc(self) -> dict[str, Any]:
        from agentcritic.store import package_versions

        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "text": asdict(self.settings),
            **{k: v for k, v in self.info.items() if k != "lora"},
            "lora_merged": self.info.get("lora"),
            "versions": package_versions(("agentcritic", "torch", "transformers")),
        }

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write a standard ``*ForSequenceClassification`` folder + tokenizer + ``agentcritic_rm.json``.

        The folder is written beside its final place and moved in, so a crash never leaves a
        half-written model where a good one was. LoRA adapters are merged into the saved weights.
        """
        from agentcritic.rm.backbone import _quiet_transformers

        model = plain_model(self.model)
        model.config.num_labels = 1
        if self.problem_type:
            model.config.problem_type = self.problem_type
        with model_folder(directory) as tmp, _quiet_transformers():
            model.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
            atomic_write(tmp / SETTINGS_FILE, json.dumps(self._settings_doc(), indent=2, sort_keys=True) + "\n")
        return Path(directory)

    @classmethod
    def from_pretrained(
        cls: type[M],
        directory: str | os.PathLike[str],
        *,
        device: str | None = None,
        dtype: Any = None,
    ) -> M:
        """Load a folder written by :meth:`save_pretrained`."""
        from transformers import AutoModelForSequenceClassification

        from agentcritic.rm.backbone import _quiet_transformers

        path = Path(directory)
        doc = read_settings(path)
        if doc.get("kind") != cls.kind:
            raise ModelFolderError(
                f"{path} holds a {doc.get('kind')!r} model, not a {cls.kind!r} one; "
                "use agentcritic.rm.load_model(dir) to load whichever it is"
            )
        kwargs: dict[str, Any] = {}
        if dtype is not None:
            kwargs["dtype"] = dtype
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
        tokenizer = load_tokenizer(path)
        settings = TextSettings.from_dict(doc.get("text", {}))
        if settings.render not in KNOWN_RENDERINGS:
            log.warning(
                "%s was trained with the renderer %r, which this version does not have; it reads the text of "
                "agentcritic.rendering.render instead (retrain it if its scores look off)",
                path,
                settings.render,
            )
            settings.render = "env"
        self = cls.__new__(cls)
        info = {k: doc[k] for k in ("backbone", "encoder", "pooling") if k in doc}
        self._setup(model, tokenizer, settings, info)
        if device is not None:
            self.to(device)
        return self

    def __repr__(self) -> str:
        lora = " +LoRA" if is_peft(self.model) else ""
        return (
            f"{type(self).__name__}(backbone={self.info.get('backbone')!r}{lora}, "
            f"pooling={self.info.get('pooling')!r}, max_length={self.settings.max_length})"
        )


@contextmanager
def model_folder(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """An empty folder beside ``directory`` to write a model into, moved into its place when the
    block ends without an error: a crash never leaves a half-written model where a good one was."""
    out = Path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    yield tmp
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def read_settings(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory)
    file = path / SETTINGS_FILE
    if not file.exists():
        hint = (
            " (it has a config.json: to start a new model from it, pass it as the backbone)"
            if (path / "config.json").exists()
            else ""
        )
        raise ModelFolderError(f"{path}: no {SETTINGS_FILE}; not a saved agentcritic model{hint}")
    try:
        doc = json.loads(file.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{file}: invalid JSON ({exc})") from exc
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFolderError(f"{file}: format_version {doc['format_version']} is newer than this agentcritic")
    return doc
