"""Load whichever reward model a saved folder holds (outcome or process)."""

from __future__ import annotations

import os
from typing import Any

from agentcritic.rm.process_reward_model import ProcessRewardModel
from agentcritic.rm.reward_model import RewardModel
from agentcritic.rm.scoring_model import ModelFolderError, ScoringModel, read_settings


def load_model(directory: str | os.PathLike[str], **kwargs: Any) -> ScoringModel:
    """Load a saved outcome or process reward model, whichever the folder holds."""
    kind = read_settings(directory).get("kind")
    for cls in (RewardModel, ProcessRewardModel):
        if cls.kind == kind:
            return cls.from_pretrained(directory, **kwargs)
    raise ModelFolderError(f"{directory}: unknown model kind {kind!r}")
