"""The outcome reward model's training config, beside :mod:`agentcritic.rm.reward_trainer` (TRL's pairing).

The shared fields (loop, optimizer, checkpoints, logging) come from
:class:`~agentcritic.rm.base_config.TrainerConfig`. Every field has a default that works and one
line of help; unknown keys are errors.
"""

from __future__ import annotations

from pydantic import Field

from agentcritic.rm.base_config import TrainerConfig


class RewardConfig(TrainerConfig):
    """Outcome reward model: ``-log σ(r_c − r_r) + center_coefficient · |mean(r_c + r_r)|``."""

    center_coefficient: float = Field(0.001, ge=0.0, description="ARMAP's centring term keeping rewards near zero")
    share_texts: bool = Field(
        True,
        description="batch the pairs of one positive together and encode each distinct input once per batch",
    )
