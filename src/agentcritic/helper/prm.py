"""Phase 2a of self-regulation: the process reward model on collected episodes (selfreg.md).

``PRM(state, h) ≈ P(success | state, next action by base (h=0) or intervention (h=1))``. The actor
tag is part of the input (:func:`agentcritic.rm.prm_text`); labels are Monte-Carlo (each logged
(state, h) gets its episode's success, optionally averaged over episodes sharing the state key).
A share of the *tasks* is held out, so no task sits on both sides; the run folder gets:

- ``model/``: the trained PRM (``ProcessRewardModel.from_pretrained`` and ``train-helper --prm`` read it),
- ``metrics.json``: held-out AUROC, accuracy, Brier, log loss, ECE and reliability bins, sizes,
- (the ``train-prm`` command and the report draw the reliability plot from ``metrics.json``),
- checkpoints while training: re-running resumes from the newest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from agentcritic.helper.helper_config import TrainPRMConfig
from agentcritic.store import RunStore

STAGE = "train_prm"


def held_out_tasks(tasks: list[str], fraction: float, seed: int) -> set[str]:
    """A fixed share of the tasks, chosen by hashing (stable when tasks are added)."""
    ranked = sorted(tasks, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    k = max(1, round(fraction * len(tasks))) if len(tasks) > 1 else 0
    return set(ranked[:k])


def prm_examples(config: TrainPRMConfig) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """(train examples, held-out examples, sizes) from the collect run in ``config.data``."""
    from agentcritic.helper.episode_files import read_episodes
    from agentcritic.rm.process_reward_model import examples_from_transitions

    episodes = read_episodes(config.data)
    tasks = sorted({ep.task_id for ep in episodes})
    held = held_out_tasks(tasks, config.eval_fraction, config.training.seed)
    train_t = [t for ep in episodes if ep.task_id not in held for t in ep.transitions]
    eval_t = [t for ep in episodes if ep.task_id in held for t in ep.transitions]
    kwargs = {"average_by_state": config.average_by_state, "helped_actor": config.helped_actor}
    train = examples_from_transitions(train_t, **kwargs)
    evals = examples_from_transitions(eval_t, **kwargs)
    sizes = {"episodes": len(episodes), "tasks": len(tasks), "held_out_tasks": len(held),
             "train_examples": len(train), "eval_examples": len(evals),
             "train_positive_rate": sum(x.label for x in train) / max(1, len(train))}
    return train, evals, sizes


def run_train_prm(config: TrainPRMConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) the PRM of ``config`` into run folder ``out``; return the metrics."""
    from agentcritic.rm.process_reward_model import ProcessRewardModel
    from agentcritic.rm.prm_trainer import train_process_reward_model

    out = Path(out)
    store = RunStore(out)  # claimed by the stage contract (agentcritic.stage)
    if store.is_done(STAGE) and (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text("utf-8"))
    train, evals, sizes = prm_examples(config)
    if not train:
        from agentcritic.helper.episode_files import EpisodeDataError

        raise EpisodeDataError(f"{config.data}: no training examples (every task was held out); collect more tasks")
    model = ProcessRewardModel(config.backbone, max_length=config.max_length, seed=config.training.seed,
                               device=config.device)
    training = config.training.model_copy(update={"output_dir": str(out)})
    metrics = train_process_reward_model(model, train, training, eval_examples=evals or None)
    metrics = {"sizes": sizes, **metrics}
    store.write_json("metrics.json", metrics)
    store.mark_done(STAGE, **sizes)
    return metrics
