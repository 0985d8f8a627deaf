"""Reward models: the outcome RM R(intent, trajectory), the process RM P(success | prefix, actor),
their trainers, metrics and an HTTP server (see armap.md §3 and selfreg.md Phase 2a).

Names are imported lazily so ``import agentcritic.rm`` stays cheap; torch and transformers load
when a model is built.

>>> from agentcritic.rm import RewardModel, RewardConfig, train_reward_model
>>> rm = RewardModel()                                  # all-MiniLM-L6-v2
>>> metrics = train_reward_model(rm, preferences, RewardConfig(output_dir="runs/rm"))
>>> rm.score([(intent, trajectory)])
"""

from __future__ import annotations

from agentcritic.lazy import lazy_exports

_EXPORTS = {
    "RewardModel": "agentcritic.rm.reward_model",
    "ScoringModel": "agentcritic.rm.scoring_model",
    "TextSettings": "agentcritic.rm.scoring_model",
    "ModelFolderError": "agentcritic.rm.scoring_model",
    "load_model": "agentcritic.rm.loading",
    "ProcessRewardModel": "agentcritic.rm.process_reward_model",
    "PRMExample": "agentcritic.rm.process_reward_model",
    "prm_text": "agentcritic.rm.process_reward_model",
    "examples_from_transitions": "agentcritic.rm.process_reward_model",
    "prefix_examples": "agentcritic.rm.process_reward_model",
    "TrainerConfig": "agentcritic.rm.base_config",
    "BaseTrainer": "agentcritic.rm.base_trainer",
    "TrainState": "agentcritic.rm.base_trainer",
    "TrainingError": "agentcritic.rm.base_trainer",
    "latest_checkpoint": "agentcritic.rm.base_trainer",
    "RewardConfig": "agentcritic.rm.reward_config",
    "RewardTrainer": "agentcritic.rm.reward_trainer",
    "train_reward_model": "agentcritic.rm.reward_trainer",
    "PRMConfig": "agentcritic.rm.prm_config",
    "PRMTrainer": "agentcritic.rm.prm_trainer",
    "train_process_reward_model": "agentcritic.rm.prm_trainer",
    "LoraSettings": "agentcritic.rm.backbone",
    "BackboneError": "agentcritic.rm.backbone",
    "minilm_path": "agentcritic.rm.backbone",
    "create_app": "agentcritic.rm.server",
    "serve": "agentcritic.rm.server",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
