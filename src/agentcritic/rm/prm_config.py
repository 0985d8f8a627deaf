"""The process reward model's training config, beside :mod:`agentcritic.rm.prm_trainer` (TRL's pairing).

The shared fields (loop, optimizer, checkpoints, logging) come from
:class:`~agentcritic.rm.base_config.TrainerConfig`. Every field has a default that works and one
line of help; unknown keys are errors.
"""

from __future__ import annotations

from pydantic import Field

from agentcritic.rm.base_config import TrainerConfig


class PRMConfig(TrainerConfig):
    """Process reward model: binary cross-entropy on P(success | prefix, next actor)."""

    pos_weight: float | None = Field(None, gt=0, description="weight of positive examples in the BCE; None = 1")
    calibration_bins: int = Field(10, ge=2, description="bins of the reliability plot")
