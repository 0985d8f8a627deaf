"""The outcome reward model: R(intent, trajectory) → one scalar.

A :class:`~agentcritic.rm.scoring_model.ScoringModel` (backbone, one-output head, token-aware
cutting) that reads :func:`agentcritic.rendering.render` of each pair: ``"Instruction: {intent}"``,
then the trajectory's first observation and its steps as its env shows them to reward models
(game24's verdict on the answer hidden) — the same text the TRL exports hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentcritic.rendering import trajectory_text
from agentcritic.rm.scoring_model import Feature, ScoringModel
from agentcritic.types import Trajectory

PairInput = tuple[str, "Trajectory | str"]


class RewardModel(ScoringModel):
    """R(intent, trajectory) → a scalar; higher means the trajectory fulfils the intent better.

    >>> rm = RewardModel()                       # all-MiniLM-L6-v2, [CLS] head, 512 tokens
    >>> rm.score([("buy red shoes", trajectory), ("buy red shoes", "Action: search[red shoes] ...")])
    """

    kind = "outcome"

    def pair_texts(self, pairs: Sequence[PairInput]) -> list[tuple[str, str]]:
        """(intent, trajectory text) per pair; the model reads ``rendering.with_intent`` of the two,
        which is ``rendering.render(intent, trajectory)`` (or the pair itself, for ``pair_input``)."""
        out = []
        for k, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"pair {k}: expected (intent, trajectory), got {type(pair).__name__}")
            intent, traj = pair
            if not isinstance(intent, str):
                raise TypeError(f"pair {k}: the intent must be a string, got {type(intent).__name__}")
            if isinstance(traj, Trajectory):
                text = trajectory_text(traj, raw=self.raw_observations)
            elif isinstance(traj, str):
                text = traj
            else:
                raise TypeError(f"pair {k}: the trajectory must be a Trajectory or a string, got {type(traj).__name__}")
            out.append((intent, text))
        return out

    def encode(self, pairs: Sequence[PairInput]) -> list[Feature]:
        return self.encode_texts(self.pair_texts(pairs))

    def tokenize(self, pairs: Sequence[PairInput], device: Any = None) -> dict[str, Any]:
        """Padded tensors for ``pairs`` in input order — the exact input the model scores."""
        return self.collate(self.encode(pairs), device)

    def score(self, pairs: Sequence[PairInput], batch_size: int = 32) -> np.ndarray:
        """One reward per (intent, trajectory) pair, in input order (float32 array)."""
        with self.scoring_lock:
            return self.score_features(self.encode(pairs), batch_size=batch_size)

    def __call__(self, intent: str, trajectory: Trajectory | str) -> float:
        return float(self.score([(intent, trajectory)])[0])
