"""The settings every trainer shares (TRL's ``TrainingArguments``), beside :mod:`agentcritic.rm.base_trainer`.

Each trainer's own config derives from :class:`TrainerConfig`: :class:`~agentcritic.rm.reward_config.RewardConfig`,
:class:`~agentcritic.rm.prm_config.PRMConfig` and :class:`~agentcritic.helper.helper_config.HelperConfig`.
Every field has a default that works and one line of help; unknown keys are errors (pydantic, like
every stage config in :mod:`agentcritic.config`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentcritic.config import StageConfig


class TrainerConfig(StageConfig):
    """Fields shared by every trainer: loop, optimizer and schedule, checkpoints, logging."""

    learning_rate: float = Field(
        5e-5, gt=0, description="peak AdamW learning rate (ARMAP's large LoRA presets: 1e-5 to 2e-5)"
    )
    num_epochs: int = Field(1, ge=1, description="passes over the training data")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides num_epochs)")
    batch_size: int = Field(16, ge=1, description="examples (pairs for the RM) per device per forward")
    gradient_accumulation_steps: int = Field(1, ge=1, description="forwards per optimizer step")
    max_length: int | None = Field(
        None, ge=8, description="tokens per input; None keeps the model's own (512 by default)"
    )
    seed: int = Field(0, description="seed for the split, the batch order and dropout")
    eval_fraction: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="held-out share when no eval set is given (whole groups: whole tasks for reward models)",
    )
    warmup_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="share of the steps with a linear learning-rate warm-up"
    )
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field("linear", description="decay after warm-up")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay (not on biases and norms)")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping; None turns it off")
    disable_dropout: bool = Field(True, description="train without dropout (TRL's reward-model default)")
    freeze_embeddings: bool = Field(
        False, description="keep the token embeddings fixed (half of MiniLM's weights: a cheaper step)"
    )
    freeze_layers: int = Field(
        0, ge=0, description="also keep the first N transformer layers fixed (no backward through them)"
    )
    group_by_length: bool = Field(
        True, description="batch inputs of similar length together so little padding is computed"
    )
    length_group_batches: int = Field(
        50, ge=1, description="batches per length-sorted chunk: fewer mixes the data more, more pads less"
    )
    output_dir: str | None = Field(
        None, description="checkpoints, metrics.json and the final model go here; None keeps all in memory"
    )
    save_steps: int | None = Field(
        50, ge=1, description="checkpoint every N optimizer steps (and at each epoch end) when output_dir is set"
    )
    save_total_limit: int = Field(2, ge=1, description="checkpoints kept (oldest deleted first)")
    save_model: bool = Field(True, description="write the trained model to output_dir/model at the end")
    resume: bool = Field(True, description="continue from the newest checkpoint in output_dir when there is one")
    eval_steps: int | None = Field(None, ge=1, description="held-out evaluation every N steps (always at the end)")
    eval_batch_size: int = Field(64, ge=1, description="inputs per forward when scoring held-out data")
    logging_steps: int = Field(10, ge=1, description="log loss, learning rate and throughput every N steps")
    progress: bool = Field(True, description="show a progress bar")
    report_to: Literal["none", "tensorboard"] = Field(
        "none", description="also write the training curves for TensorBoard (to output_dir/runs) through Accelerate"
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "no", description="bf16 autocast: on GPUs, and on CPUs with avx512_bf16 or AMX (1.4x faster on this EPYC)"
    )
    num_threads: int | None = Field(
        None, ge=1, description="torch CPU threads; None keeps torch's choice (one per core)"
    )
