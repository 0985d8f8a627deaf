"""The engine every trainer shares (TRL's ``BaseTrainer``), beside :mod:`agentcritic.rm.base_config`.

:class:`BaseTrainer` runs the loop through 🤗 Accelerate (CPU, one GPU or many, same code) for the
outcome RM (:mod:`agentcritic.rm.reward_trainer`), the process RM (:mod:`agentcritic.rm.prm_trainer`)
and the helper (:mod:`agentcritic.helper.helper_trainer`); a subclass says how examples become
features, what one batch's loss is and how a set of examples is evaluated.

Why it is fast on CPU (compared with TRL's trainers on the same model and data):
- inputs are tokenised once, up front, and padded per batch to the batch's longest input — never to
  ``max_length``;
- batches group inputs of similar length (shuffled mega-batches sorted by length, then the batches
  shuffled), so almost no padding is computed;
- a plain loop: no per-step dataset indexing, collator objects, metric gathering or callbacks.

Checkpoints (``output_dir/checkpoints/step-N``) hold the model, optimizer, scheduler and RNG states
(Accelerate's ``save_state``) and the loop position; they are written to a temporary folder and
renamed, so a kill never leaves a torn one. Re-running with the same config resumes from the newest
checkpoint and, because the batch order depends only on (seed, epoch), ends with the same weights
as an uninterrupted run.

Logs: every ``logging_steps`` the loss, learning rate and throughput go to ``log_history`` (in
``metrics.json``) and, with ``report_to="tensorboard"``, to TensorBoard event files in
``output_dir/runs`` through Accelerate's trackers (as TRL does).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.rm.base_config import TrainerConfig
from agentcritic.rm.scoring_model import Feature, ScoringModel
from agentcritic.store import atomic_write

log = logging.getLogger("agentcritic.rm")

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
#: TensorBoard event files go to output_dir/TRACKER_DIR (``report_to="tensorboard"``), as in TRL
TRACKER_DIR = "runs"


class TrainingError(AgentCriticError, ValueError):
    """Training data or a run folder that cannot be used as asked; the message says why."""


@dataclass
class TrainState:
    """Where the loop is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""


# ----------------------------------------------------------------------------------- helpers
def length_grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    group: bool = True,
    mega: int = 50,
    units: Sequence[Any] | None = None,
) -> list[list[int]]:
    """Deterministic batches for one epoch: a function of (seed, epoch) only, so resume is exact.

    ``units`` (one key per item) keeps items with the same key next to each other, so they mostly
    share a batch — the reward trainer passes the chosen trajectory, so a positive that has several
    negatives is encoded once for all of them. Without ``units`` every item is its own unit.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    members: dict[Any, list[int]] = {}
    for i in range(len(lengths)):
        members.setdefault(i if units is None else units[i], []).append(i)
    order = list(members.values())
    rng.shuffle(order)
    if not group:
        flat = [i for unit in order for i in unit]
        return [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
    batches: list[list[int]] = []
    span = mega * batch_size
    chunk: list[list[int]] = []
    filled = 0
    for k, unit in enumerate(order):
        chunk.append(unit)
        filled += len(unit)
        if filled >= span or k == len(order) - 1:
            chunk.sort(key=lambda u: -max(lengths[i] for i in u))
            flat = [i for u in chunk for i in u]
            batches.extend(flat[j : j + batch_size] for j in range(0, len(flat), batch_size))
            chunk, filled = [], 0
    rng.shuffle(batches)
    return batches


def group_split(keys: Sequence[str | tuple[str, ...]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, eval) with every key wholly on one side, eval about ``fraction`` of the items.

    An item's key is a string or a tuple of strings; items that share any string are one group (a
    preference pair whose two trajectories come from two tasks joins both tasks). The split depends
    only on the keys and ``seed``, not on the items' order. With a single group nothing can be held
    out without cutting it: everything trains, with a warning.
    """
    n = len(keys)
    if fraction <= 0 or n < 2:
        return list(range(n)), []
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    firsts: list[str] = []
    for i, k in enumerate(keys):
        names_of = (k,) if isinstance(k, str) else tuple(k)
        if not names_of:
            raise ValueError(f"group_split: item {i} has an empty key")
        for s in names_of:
            parent.setdefault(s, s)
        for s in names_of[1:]:
            a, b = find(names_of[0]), find(s)
            if a != b:  # the smallest name is the root, so the groups do not depend on the order
                parent[max(a, b)] = min(a, b)
        firsts.append(names_of[0])
    groups: dict[str, list[int]] = {}
    for i, first in enumerate(firsts):
        groups.setdefault(find(first), []).append(i)
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    target = max(1, round(fraction * n))
    if len(names) < 2:
        log.warning("all %d examples share one group (task): nothing is held out; give held-out data "
                    "or examples of more groups", n)
        return list(range(n)), []
    eval_idx: list[int] = []
    for name in names[:-1]:  # leave at least one group for training
        if len(eval_idx) >= target:
            break
        eval_idx.extend(groups[name])
    held = set(eval_idx)
    return [i for i in range(n) if i not in held], sorted(eval_idx)


def fingerprint(parts: Sequence[str]) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode("utf-8", "replace"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def _lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        progress = min(max(progress, 0.0), 1.0)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return f


def _checkpoints(output_dir: Path) -> list[Path]:
    root = output_dir / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    found = _checkpoints(Path(output_dir))
    return found[-1] if found else None


# ----------------------------------------------------------------------------------- engine
class BaseTrainer:
    """The loop shared by the outcome-RM, process-RM and helper trainers.

    Subclasses name the model they train (:attr:`model_class`) and their config (:attr:`config_class`,
    the default when none is given) and say how examples are checked (:meth:`_examples`), how they
    become features (:meth:`_featurize`), what one batch's loss is (:meth:`_batch_loss`) and how a set
    of examples is evaluated (:meth:`evaluate`).

    Args:
        model: the network to train, in place.
        config: the trainer's settings (``config_class()`` when None).
        train_dataset: the training examples.
        eval_dataset: held-out examples; None holds out ``config.eval_fraction`` of the groups.
        eval_sets: further named sets evaluated at the end (``metrics["eval_sets"][name]``).
        callbacks: called after every optimizer step with the state and the latest loss.
    """

    unit = "examples"
    model_class: type | tuple[type, ...] = ScoringModel
    config_class: type[TrainerConfig] = TrainerConfig

    def __init__(
        self,
        model: ScoringModel,
        config: TrainerConfig | None = None,
        train_dataset: Sequence[Any] = (),
        eval_dataset: Sequence[Any] | None = None,
        eval_sets: dict[str, Sequence[Any]] | None = None,
        callbacks: Sequence[Callable[[TrainState, dict[str, Any]], None]] | None = None,
    ) -> None:
        if not isinstance(model, self.model_class):
            classes = self.model_class if isinstance(self.model_class, tuple) else (self.model_class,)
            names = " or ".join(c.__name__ for c in classes)
            raise TypeError(f"{type(self).__name__} trains a {names}, got {type(model).__name__}")
        config = config or self.config_class()
        self.model = model
        self.config = config
        self.callbacks = list(callbacks or [])
        check_report_to(config)
        if config.max_length is not None and config.max_length != model.settings.max_length:
            limit = getattr(model.model.config, "max_position_embeddings", None)
            if isinstance(limit, int) and config.max_length > limit:
                raise TrainingError(f"max_length={config.max_length} exceeds the backbone's {limit} positions")
            model.settings.max_length = int(config.max_length)
        data = self._examples(list(train_dataset), "train_dataset")
        if not data:
            raise TrainingError("train_dataset is empty: nothing to train on")
        if eval_dataset is None:
            keys = [self._group_key(x) or f"#{i}" for i, x in enumerate(data)]
            train_idx, eval_idx = group_split(keys, config.eval_fraction, config.seed)
            self.train_data = [data[i] for i in train_idx]
            self.eval_data = [data[i] for i in eval_idx]
        else:
            self.eval_data = self._examples(list(eval_dataset), "eval_dataset")
            self.train_data = data
        self.eval_sets = {
            name: self._examples(list(v), f"eval_sets[{name!r}]") for name, v in (eval_sets or {}).items()
        }
        self.state = TrainState()
        self.metrics: dict[str, Any] = {}
        self.accelerator: Any = None

    # ------------------------------------------------------------------ subclass hooks
    def _examples(self, data: list[Any], what: str) -> list[Any]:
        """``data`` checked (TrainingError naming ``what[k]``) and in the form the trainer reads."""
        raise NotImplementedError

    def _group_key(self, example: Any) -> str | tuple[str, ...]:
        """Examples sharing a key stay on one side of the held-out split ("" = on its own; see group_split)."""
        raise NotImplementedError

    def _featurize(self, examples: list[Any]) -> list[Any]:
        """Tokenised items (dicts) with a ``length`` for length grouping and, optionally, a ``unit`` key:
        items with the same unit are batched next to each other."""
        raise NotImplementedError

    def _batch_loss(self, model: Any, items: list[Any]) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def evaluate(self, examples: Sequence[Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _data_fingerprint(self) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ main loop
    def train(self) -> dict[str, Any]:
        """Train (or resume), evaluate, write ``metrics.json``; return the metrics."""
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.config
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        out_dir = Path(cfg.output_dir) if cfg.output_dir else None
        tracking = cfg.report_to != "none"
        trackers = {"log_with": cfg.report_to, "project_dir": str(out_dir)} if tracking else {}
        acc = Accelerator(mixed_precision=cfg.mixed_precision, **trackers)
        self.accelerator = acc
        if tracking:
            acc.init_trackers(TRACKER_DIR)
        set_seed(cfg.seed)

        t_prep = time.perf_counter()
        items = self._featurize(self.train_data)
        lengths = [it["length"] for it in items]
        units = [it["unit"] for it in items] if "unit" in items[0] else None
        prep_seconds = time.perf_counter() - t_prep

        net = self.model.scorer  # nn.Module around the HF model: one logit per row, fast [CLS] path
        restore_dropout = self._disable_dropout(net) if cfg.disable_dropout else []
        restore_frozen = self._freeze(self.model.model)
        net.train()
        optimizer = self._optimizer(net)
        n_local = len(self._local_batches(lengths, 0, units))
        ga = cfg.gradient_accumulation_steps
        steps_per_epoch = max(1, math.ceil(n_local / ga))
        total = cfg.max_steps or steps_per_epoch * cfg.num_epochs
        epochs = math.ceil(total / steps_per_epoch)
        warmup = int(round(cfg.warmup_ratio * total))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.lr_scheduler, warmup, total))
        net, optimizer = acc.prepare(net, optimizer)
        acc.register_for_checkpointing(scheduler)

        state = TrainState(fingerprint=self._data_fingerprint())
        if out_dir is not None and cfg.resume:
            ckpt = latest_checkpoint(out_dir)
            if ckpt is not None:
                state = self._load_checkpoint(acc, ckpt, state.fingerprint)
        self.state = state

        bar = None
        if cfg.progress and acc.is_main_process:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=total, initial=state.step, desc=f"train {self.model.kind} RM", unit="step", dynamic_ncols=True
            )
        window: dict[str, list[float]] = {}
        t_window, n_window = time.perf_counter(), 0
        stop = state.step >= total
        try:
            for epoch in range(state.epoch, epochs):
                if stop:
                    break
                batches = self._local_batches(lengths, epoch, units)
                start = state.batch_in_epoch if epoch == state.epoch else 0
                bi = start
                while bi < len(batches):
                    group = batches[bi : bi + ga]
                    t0 = time.perf_counter()
                    for k, idx in enumerate(group):
                        last = k == len(group) - 1
                        ctx = contextlib.nullcontext() if last else acc.no_sync(net)
                        with ctx, acc.autocast():
                            loss, stats = self._batch_loss(net, [items[i] for i in idx])
                            acc.backward(loss / len(group))
                        for key, value in stats.items():
                            window.setdefault(key, []).append(value)
                        n_window += len(idx)
                        state.examples_seen += len(idx) * acc.num_processes
                    if cfg.max_grad_norm:
                        acc.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    bi += len(group)
                    state.step += 1
                    state.epoch, state.batch_in_epoch = epoch, bi
                    if bi >= len(batches):
                        state.epoch, state.batch_in_epoch = epoch + 1, 0
                    state.train_seconds += time.perf_counter() - t0
                    if bar is not None:
                        bar.update(1)
                        if "loss" in window:
                            bar.set_postfix(loss=f"{np.mean(window['loss'][-10:]):.4f}")
                    if state.step % cfg.logging_steps == 0 or state.step == total:
                        now = time.perf_counter()
                        entry = {
                            "step": state.step,
                            "epoch": epoch + bi / max(1, len(batches)),
                            "learning_rate": scheduler.get_last_lr()[0],
                            f"{self.unit}_per_second": n_window * acc.num_processes / max(1e-9, now - t_window),
                            **{k: float(np.mean(v)) for k, v in window.items()},
                        }
                        state.log_history.append(entry)
                        if tracking:
                            acc.log(_tracked(entry, "train"), step=state.step)
                        log.info("step %d: %s", state.step, {k: round(v, 4) for k, v in entry.items()})
                        window, t_window, n_window = {}, time.perf_counter(), 0
                    if cfg.eval_steps and state.step % cfg.eval_steps == 0 and state.step < total and self.eval_data:
                        report = self.evaluate()
                        state.log_history.append({"step": state.step, "eval": _headline(report)})
                        if tracking:
                            acc.log(_tracked(_headline(report), "eval"), step=state.step)
                        net.train()
                    epoch_end = state.batch_in_epoch == 0
                    if out_dir is not None and (
                        (cfg.save_steps and state.step % cfg.save_steps == 0) or epoch_end or state.step == total
                    ):
                        self._save_checkpoint(acc, out_dir, state)
                    for cb in self.callbacks:
                        cb(state, {"loss": entry_loss(window, state)})
                    if state.step >= total:
                        stop = True
                        break
        finally:
            if bar is not None:
                bar.close()
            if tracking:
                acc.end_training()
            for module, p in restore_dropout:
                module.p = p
            for param in restore_frozen:
                param.requires_grad_(True)
            unwrapped = acc.unwrap_model(net, keep_fp32_wrapper=False)
            self.model.model = unwrapped.model
            self.model._scorer = unwrapped
            self.model.model.eval()

        metrics = self._final_metrics(prep_seconds)
        if out_dir is not None and acc.is_main_process:
            if cfg.save_model:
                self.model.save_pretrained(out_dir / "model")
            atomic_write(out_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
        acc.wait_for_everyone()
        self.metrics = metrics
        return metrics

    # ------------------------------------------------------------------ pieces
    def _local_batches(self, lengths: list[int], epoch: int, units: list[Any] | None = None) -> list[list[int]]:
        cfg = self.config
        batches = length_grouped_batches(
            lengths, cfg.batch_size, cfg.seed, epoch, cfg.group_by_length, mega=cfg.length_group_batches, units=units
        )
        acc = self.accelerator
        n = acc.num_processes if acc is not None else 1
        if n > 1:
            usable = (len(batches) // n) * n  # every process must run the same number of steps
            if usable == 0:
                raise TrainingError(f"{len(batches)} batches cannot feed {n} processes; lower batch_size")
            batches = batches[:usable][acc.process_index :: n]
        return batches

    @staticmethod
    def _disable_dropout(net: Any) -> list[tuple[Any, float]]:
        import torch

        changed = []
        for module in net.modules():
            if isinstance(module, torch.nn.Dropout) and module.p > 0:
                changed.append((module, module.p))
                module.p = 0.0
        return changed

    def _freeze(self, model: Any) -> list[Any]:
        """Apply ``freeze_embeddings`` / ``freeze_layers``; return the parameters to unfreeze later."""
        from agentcritic.rm.backbone import is_peft, transformer_layers

        cfg = self.config
        if not (cfg.freeze_embeddings or cfg.freeze_layers) or is_peft(model):
            return []  # LoRA already trains adapters only
        modules = [model.get_input_embeddings()]
        if cfg.freeze_layers:
            layers = transformer_layers(model)
            if layers is None:
                raise TrainingError(f"freeze_layers: cannot find the transformer layers of {type(model).__name__}")
            if cfg.freeze_layers >= len(layers):
                raise TrainingError(f"freeze_layers={cfg.freeze_layers} would freeze all {len(layers)} layers")
            base = getattr(model, model.base_model_prefix, model)
            modules = [getattr(base, "embeddings", None) or model.get_input_embeddings(), *layers[: cfg.freeze_layers]]
        frozen = []
        for module in modules:
            for p in module.parameters():
                if p.requires_grad:
                    p.requires_grad_(False)
                    frozen.append(p)
        return frozen

    def _optimizer(self, net: Any) -> Any:
        import torch

        decay, no_decay = [], []
        for name, p in net.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        try:  # the fused kernel is 2-3x faster than foreach on CPU (and what HF Trainer uses)
            return torch.optim.AdamW(groups, lr=self.config.learning_rate, fused=True)
        except (RuntimeError, ValueError, TypeError):
            return torch.optim.AdamW(groups, lr=self.config.learning_rate, foreach=True)

    def _save_checkpoint(self, acc: Any, out_dir: Path, state: TrainState) -> None:
        root = out_dir / CHECKPOINT_DIR
        final = root / f"step-{state.step:07d}"
        tmp = root / f".step-{state.step:07d}.tmp"
        if acc.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
        acc.wait_for_everyone()
        acc.save_state(str(tmp), safe_serialization=True)
        if acc.is_main_process:
            doc = asdict(state)
            doc["config"] = self.config.model_dump()
            atomic_write(tmp / STATE_FILE, json.dumps(doc, indent=2, sort_keys=True, default=float) + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in _checkpoints(out_dir)[: -self.config.save_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def _load_checkpoint(self, acc: Any, ckpt: Path, fingerprint: str) -> TrainState:
        doc = json.loads((ckpt / STATE_FILE).read_text("utf-8"))
        saved_cfg = doc.pop("config", {})
        if doc.get("fingerprint") != fingerprint:
            raise TrainingError(
                f"{ckpt}: the checkpoint was trained on other data; use another output_dir, "
                "or set resume=False to start again"
            )
        for key in (
            "batch_size",
            "gradient_accumulation_steps",
            "seed",
            "group_by_length",
            "length_group_batches",
            "share_texts",
            "max_length",
            "freeze_embeddings",
            "freeze_layers",
        ):
            if key in saved_cfg and saved_cfg[key] != getattr(self.config, key):
                raise TrainingError(
                    f"{ckpt}: saved with {key}={saved_cfg[key]!r}, now {getattr(self.config, key)!r}; "
                    "resuming would not reproduce the run: use the same value, another output_dir, or resume=False"
                )
        acc.load_state(str(ckpt))
        log.info("resumed from %s (step %d)", ckpt, doc.get("step", 0))
        names = {f for f in TrainState.__dataclass_fields__}
        return TrainState(**{k: v for k, v in doc.items() if k in names})

    def _final_metrics(self, prep_seconds: float) -> dict[str, Any]:
        s = self.state
        out: dict[str, Any] = {
            "kind": self.model.kind,
            "train": {
                "steps": s.step,
                "examples_seen": s.examples_seen,
                "n_train": len(self.train_data),
                "n_eval": len(self.eval_data),
                "train_seconds": s.train_seconds,
                "tokenize_seconds": prep_seconds,
                f"{self.unit}_per_second": s.examples_seen / max(1e-9, s.train_seconds),
                "final_loss": next((e["loss"] for e in reversed(s.log_history) if "loss" in e), None),
                "first_loss": next((e["loss"] for e in s.log_history if "loss" in e), None),
                "log_history": s.log_history,
            },
            "config": self.config.model_dump(),
            "model": repr(self.model),
        }
        if self.eval_data:
            out["eval"] = self.evaluate(self.eval_data)
        if self.eval_sets:
            out["eval_sets"] = {name: self.evaluate(values) for name, values in self.eval_sets.items()}
        return out

    def _score_sharded(self, feats: list[Feature]) -> np.ndarray:
        """Score features on every process (a shard each) and gather, in input order."""
        acc = self.accelerator
        bs = self.config.eval_batch_size
        if acc is None or acc.num_processes == 1:
            label = "scoring held-out" if self.config.progress and len(feats) > 4 * bs else None
            return self.model.score_features(feats, batch_size=bs, raw=True, progress=label)
        from accelerate.utils import gather_object

        mine = list(range(acc.process_index, len(feats), acc.num_processes))
        scores = self.model.score_features([feats[i] for i in mine], batch_size=bs, raw=True)
        gathered = gather_object([(i, float(v)) for i, v in zip(mine, scores, strict=True)])
        out = np.empty(len(feats), dtype=np.float32)
        for i, v in gathered:
            out[i] = v
        return out


def entry_loss(window: dict[str, list[float]], state: TrainState) -> float | None:
    """The latest logged or running loss, for callbacks."""
    if window.get("loss"):
        return float(window["loss"][-1])
    for e in reversed(state.log_history):
        if "loss" in e:
            return float(e["loss"])
    return None


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if isinstance(v, (int, float))}


def _tracked(values: dict[str, Any], prefix: str) -> dict[str, float]:
    """A log entry as tracker scalars, named as TRL's runs name them (``train/loss``, ``eval/accuracy``)."""
    return {f"{prefix}/{k}": float(v) for k, v in values.items() if k != "step" and isinstance(v, (int, float))}


def check_report_to(config: TrainerConfig) -> None:
    """Refuse ``report_to`` that cannot work, before anything is trained."""
    if config.report_to != "tensorboard":
        return
    if not config.output_dir:
        raise TrainingError("report_to='tensorboard' writes its event files under output_dir, which is not set; "
                            "give an output_dir, or set report_to='none'")
    if not any(importlib.util.find_spec(name) is not None for name in ("tensorboardX", "tensorboard")):
        raise TrainingError("report_to='tensorboard' needs a TensorBoard writer, which is not installed: "
                            "install it with `pip install 'agentcritic[tensorboard]'` (tensorboardX), "
                            "or set report_to='none'")
