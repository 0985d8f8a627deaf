"""The outcome reward model's trainer, beside :mod:`agentcritic.rm.reward_config` (TRL's pairing).

:class:`RewardTrainer` trains the outcome RM on preference pairs with ARMAP's loss
``-log σ(r_chosen − r_rejected) + 0.001 · |mean(r_chosen + r_rejected)|`` on the shared engine
(:class:`~agentcritic.rm.base_trainer.BaseTrainer`: Accelerate, length-grouped dynamic padding,
resumable checkpoints, TensorBoard when asked). What it adds for speed:

- chosen and rejected go through the model in one forward;
- the pairs of one positive (synthesis gives each positive an edit, a truncation, cross-policy
  pairs …) are batched together and each distinct input is encoded once per batch
  (``share_texts``): the same loss and gradient with a quarter to a third fewer rows on real data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agentcritic.rm.base_trainer import BaseTrainer, TrainingError, TrainState, fingerprint
from agentcritic.rm.metrics import preference_report
from agentcritic.rm.pairs import pair_tasks
from agentcritic.rm.reward_config import RewardConfig
from agentcritic.rm.reward_model import RewardModel
from agentcritic.rm.scoring_model import Feature
from agentcritic.types import Preference


def _feature_key(feat: Feature) -> tuple:
    """What the model reads: equal keys give equal scores."""
    return tuple(tuple(feat[k]) for k in sorted(feat))


def _distinct(feats: Sequence[Feature], keys: Sequence[tuple]) -> tuple[list[Feature], list[int]]:
    """The distinct inputs (first-seen order) and, per input, the index of its distinct copy."""
    first: dict[tuple, int] = {}
    distinct: list[Feature] = []
    where = []
    for k, f in zip(keys, feats, strict=True):
        if k not in first:
            first[k] = len(distinct)
            distinct.append(f)
        where.append(first[k])
    return distinct, where


# ----------------------------------------------------------------------------------- outcome RM
class RewardTrainer(BaseTrainer):
    """Pairwise (Bradley–Terry) training of a :class:`RewardModel` on :class:`Preference` pairs.

    >>> trainer = RewardTrainer(rm, RewardConfig(output_dir="runs/rm"), prefs, eval_sets={"shop": shop_prefs})
    >>> metrics = trainer.train()      # metrics["eval"]["per_source"], metrics["eval_sets"]["shop"] …
    """

    unit = "pairs"
    model_class = RewardModel
    config_class = RewardConfig
    config: RewardConfig
    model: RewardModel

    def _examples(self, data: list[Any], what: str) -> list[Preference]:
        for k, p in enumerate(data):
            if not isinstance(p, Preference):
                raise TrainingError(f"{what}[{k}]: expected a Preference, got {type(p).__name__}")
        return data

    def _group_key(self, example: Preference) -> tuple[str, ...]:
        return pair_tasks(example)  # held out by task: no trajectory on both sides

    def _data_fingerprint(self) -> str:
        return fingerprint(
            [f"{p.intent}|{p.source}|{len(p.chosen.steps)}|{len(p.rejected.steps)}" for p in self.train_data]
        )

    def _encode_pairs(self, prefs: Sequence[Preference]) -> tuple[list[Feature], list[Feature]]:
        rm = self.model
        feats = rm.encode([(p.intent, p.chosen) for p in prefs] + [(p.intent, p.rejected) for p in prefs])
        n = len(prefs)
        return feats[:n], feats[n:]

    def _featurize(self, examples: list[Preference]) -> list[dict[str, Any]]:
        chosen, rejected = self._encode_pairs(examples)
        items = []
        for c, r in zip(chosen, rejected, strict=True):
            item = {"chosen": c, "rejected": r, "length": max(len(c["input_ids"]), len(r["input_ids"]))}
            if self.config.share_texts:
                item["keys"] = (_feature_key(c), _feature_key(r))
                item["unit"] = item["keys"][0]  # pairs with the same positive share a batch
            items.append(item)
        return items

    def _batch_loss(self, model: Any, items: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        import torch
        import torch.nn.functional as F

        n = len(items)
        feats = [it["chosen"] for it in items] + [it["rejected"] for it in items]
        if self.config.share_texts:
            # One forward per distinct input: a positive with several negatives in the batch is
            # encoded once and its reward reused (the loss and its gradient are unchanged).
            keys = [it["keys"][0] for it in items] + [it["keys"][1] for it in items]
            distinct, where = _distinct(feats, keys)
            batch = self.model.collate(distinct, self.model.device)
            rewards = self.model.logits(batch, model).float()[torch.tensor(where, device=self.model.device)]
        else:
            batch = self.model.collate(feats, self.model.device)
            rewards = self.model.logits(batch, model).float()
        rc, rr = rewards[:n], rewards[n:]
        loss = -F.logsigmoid(rc - rr).mean()
        if self.config.center_coefficient:
            loss = loss + self.config.center_coefficient * (rc + rr).mean().abs()
        with_stats = {
            "loss": float(loss.detach()),
            "accuracy": float((rc > rr).float().mean()),
            "margin": float((rc - rr).mean().detach()),
        }
        return loss, with_stats

    def evaluate(self, examples: Sequence[Preference] | None = None) -> dict[str, Any]:
        """Pairwise accuracy overall and per source, margins and histograms on ``examples``."""
        prefs = list(self.eval_data if examples is None else examples)
        if not prefs:
            return {"n": 0}
        chosen, rejected = self._encode_pairs(prefs)
        feats = chosen + rejected
        distinct, where = _distinct(feats, [_feature_key(f) for f in feats])
        scores = self._score_sharded(distinct)[np.asarray(where, dtype=np.int64)]
        n = len(prefs)
        return preference_report(scores[:n], scores[n:], [p.source for p in prefs])


def train_reward_model(
    model: RewardModel,
    preferences: Sequence[Preference],
    config: RewardConfig | None = None,
    *,
    eval_preferences: Sequence[Preference] | None = None,
    eval_sets: dict[str, Sequence[Preference]] | None = None,
    callbacks: Sequence[Callable[[TrainState, dict[str, Any]], None]] | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place on ``preferences``; return the metrics (also in output_dir/metrics.json).

    Held-out accuracy comes from ``eval_preferences`` or, when not given, from ``config.eval_fraction``
    of the pairs, whole tasks held out (no trajectory on both sides); ``eval_sets`` adds named sets (e.g. another env's pairs for cross-domain accuracy).
    """
    trainer = RewardTrainer(model, config, preferences, eval_preferences, eval_sets, callbacks)
    return trainer.train()
