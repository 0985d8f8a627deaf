"""Configs for the helper (selfreg.md Phase 3): where its labels come from and how it trains.

TRL's ``<name>_config.py`` pairing with :mod:`agentcritic.helper.helper_trainer`. Every field has a
default that works and one line of help; unknown keys are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentcritic.config import StageConfig
from agentcritic.rm.reward_config import TrainerConfig


class HelperLabelConfig(StageConfig):
    """The tabular model and DP whose decisions the helper learns."""

    state_key: Literal["prefix", "bins"] = Field(
        "bins", description="tabular state: bins (step, PRM bin, last actor; needs --prm) or the exact per-task prefix tree"
    )
    n_min: int = Field(1, ge=1, description="visits of (s, h) below which the PRM gives its value")
    kappa: float = Field(0.0, ge=0.0, description="shrinkage of table values towards the PRM (0 = none)")
    n_bins: int = Field(10, ge=1, description="PRM-score bins of the 'bins' state key")
    budget: int = Field(5, ge=1, description="largest budget left the labels cover (b = 1 … budget)")
    policy: Literal["budget", "lagrangian"] = Field(
        "budget", description="exact budgeted DP π*(s, b), or the Lagrangian π_λ at λ meeting the budget"
    )
    lagrangian_usage: float = Field(1.0, gt=0, description="'lagrangian' labels: mean interventions per episode")
    reachable_only: bool = Field(False, description="label only (s, b) reachable from the start under π*")


class HelperConfig(TrainerConfig):
    """The helper classifier: state text + step + budget left → ask / continue."""

    backbone: str = Field(
        "minilm", description="minilm | smollm2-lora | a local HF folder (encoder: classifier, decoder: LoRA SFT)"
    )
    max_length: int | None = Field(256, ge=8, description="tokens per input (the start and the last steps are kept)")
    learning_rate: float = Field(5e-5, gt=0, description="peak AdamW learning rate (LoRA: try 2e-4)")
    num_epochs: int = Field(3, ge=1, description="passes over the training examples")
    balance: Literal["weight", "resample", "none"] = Field(
        "weight", description="class imbalance: weight the loss by inverse frequency, resample asks, or nothing"
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="ask when P(ask) exceeds this")
    eval_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="held-out share of the tasks")
    lora_r: int = Field(16, ge=1, description="LoRA rank (smollm2-lora and other decoders)")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling alpha")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="LoRA dropout")
    labels: HelperLabelConfig = Field(default_factory=HelperLabelConfig, description="the DP the labels come from")
