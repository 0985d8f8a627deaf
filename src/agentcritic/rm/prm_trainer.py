"""Training the process reward model: binary cross-entropy on (prefix text, P(success)) examples.

The trainer beside :mod:`agentcritic.rm.prm_config` (TRL's pairing), on the shared engine
(:class:`agentcritic.rm.base_trainer.BaseTrainer`: Accelerate, length-grouped dynamic padding,
resumable checkpoints, TensorBoard when asked); evaluation reports AUROC, accuracy, Brier score,
log loss and reliability-plot bins (selfreg.md Phase 2a).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentcritic.rm.metrics import classification_report
from agentcritic.rm.process_reward_model import PRMExample, ProcessRewardModel
from agentcritic.rm.base_trainer import BaseTrainer, TrainingError, TrainState, fingerprint
from agentcritic.rm.prm_config import PRMConfig

Example = PRMExample | tuple[str, float]


def as_example(item: Any, k: int = 0, what: str = "train_dataset") -> PRMExample:
    """Accept a :class:`PRMExample` or a (text, label) tuple; labels must lie in [0, 1]."""
    if isinstance(item, PRMExample):
        ex = item
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3) and isinstance(item[0], str):
        ex = PRMExample(item[0], float(item[1]), str(item[2]) if len(item) == 3 else "")
    else:
        raise TrainingError(f"{what}[{k}]: expected a PRMExample or (text, label), got {type(item).__name__}")
    try:
        label = float(ex.label)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"{what}[{k}]: label {ex.label!r} is not a number") from exc
    if not 0.0 <= label <= 1.0:
        raise TrainingError(f"{what}[{k}]: label {label} is outside [0, 1]")
    return PRMExample(ex.text, label, ex.group)


class PRMTrainer(BaseTrainer):
    """Train a :class:`ProcessRewardModel` on labelled prefixes.

    Examples without a ``group`` are split one by one; give the task (or episode) id as the group
    so that prefixes of one episode never sit on both sides of the held-out split.
    """

    unit = "examples"
    model_class = ProcessRewardModel
    config_class = PRMConfig
    config: PRMConfig
    model: ProcessRewardModel

    def _examples(self, data: list[Any], what: str) -> list[PRMExample]:
        return [as_example(x, k, what) for k, x in enumerate(data)]

    def _group_key(self, example: PRMExample) -> str:
        return example.group

    def _data_fingerprint(self) -> str:
        return fingerprint([f"{len(x.text)}|{x.label:.6f}|{x.group}" for x in self.train_data])

    def _featurize(self, examples: list[PRMExample]) -> list[dict[str, Any]]:
        feats = self.model.encode([x.text for x in examples])
        return [{"x": f, "y": x.label, "length": len(f["input_ids"])} for f, x in zip(feats, examples, strict=True)]

    def _batch_loss(self, model: Any, items: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        import torch
        import torch.nn.functional as F

        device = self.model.device
        batch = self.model.collate([it["x"] for it in items], device)
        logits = self.model.logits(batch, model).float()
        y = torch.tensor([it["y"] for it in items], dtype=torch.float32, device=device)
        pos_weight = None
        if self.config.pos_weight is not None:
            pos_weight = torch.tensor(self.config.pos_weight, dtype=torch.float32, device=device)
        loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        acc = float(((logits > 0).float() == (y >= 0.5).float()).float().mean())
        return loss, {"loss": float(loss.detach()), "accuracy": acc}

    def evaluate(self, examples: Sequence[Example] | None = None) -> dict[str, Any]:
        """AUROC, accuracy, Brier, log loss and reliability bins on ``examples`` (held-out by default)."""
        import numpy as np

        data = self.eval_data if examples is None else [as_example(x, k, "examples") for k, x in enumerate(examples)]
        if not data:
            return {"n": 0}
        logits = self._score_sharded(self.model.encode([x.text for x in data]))
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        return classification_report(probs, [x.label for x in data], bins=self.config.calibration_bins)


def train_process_reward_model(
    model: ProcessRewardModel,
    examples: Sequence[Example],
    config: PRMConfig | None = None,
    *,
    eval_examples: Sequence[Example] | None = None,
    eval_sets: dict[str, Sequence[Example]] | None = None,
    callbacks: Sequence[Callable[[TrainState, dict[str, Any]], None]] | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place; return the metrics (AUROC, calibration) — see :class:`PRMTrainer`."""
    return PRMTrainer(model, config, examples, eval_examples, eval_sets, callbacks).train()
