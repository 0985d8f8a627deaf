"""Training the helper on the DP's decisions (selfreg.md Phase 3).

- :func:`label_examples`: a :class:`~agentcritic.helper.tabular.TabularModel` → the DP (exact
  budgeted π*(s, b), or the Lagrangian π_λ meeting a usage) → one :class:`HelperExample` per logged
  non-terminal state text and budget left b = 1 … C (optionally only the (s, b) reachable under π*).
- :class:`HelperTrainer` (beside its config, :class:`~agentcritic.helper.helper_config.HelperConfig`):
  the shared engine (:class:`~agentcritic.rm.base_trainer.BaseTrainer`: Accelerate, length-grouped
  batches, resumable checkpoints, TensorBoard when asked) with a class-weighted (or resampled)
  loss — binary cross-entropy for the ``minilm`` classifier, the answer token's LM loss for
  ``smollm2-lora`` — and held-out evaluation by task: balanced accuracy against the DP labels,
  accuracy, AUROC, ask rates.
- :func:`train_helper`: examples + :class:`HelperConfig` + output folder → metrics; the folder then
  holds ``model/``, ``helper.json`` and ``metrics.json`` (:func:`~agentcritic.helper.helper_model.load_helper`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from agentcritic.config import StageConfig

from agentcritic.helper.dp import BudgetSolution, LambdaSearch, ask_now_actions, ask_now_labels, search_lambda, solve_budget
from agentcritic.helper.episode_files import read_episodes
from agentcritic.helper.helper_config import HelperConfig, HelperLabelConfig, recorded_collection, resolve_state_key
from agentcritic.helper.helper_model import (
    SMOLLM2_ALIASES,
    HelperClassifier,
    HelperExample,
    HelperLM,
    state_view,
    write_helper_settings,
)
from agentcritic.helper.prm_scores import SCORES_FILE, MemoScorer, load_prm, prm_identity, prm_scorer
from agentcritic.helper.tabular import DEFAULT_ACTOR, TabularModel
from agentcritic.rm.backbone import LoraSettings
from agentcritic.rm.base_trainer import BaseTrainer, TrainingError, TrainState, fingerprint
from agentcritic.rm.metrics import auroc
from agentcritic.store import RunStore, atomic_write

STAGE = "train_helper"


# ----------------------------------------------------------------------------------- labels
def solve_for_labels(model: TabularModel, cfg: HelperLabelConfig) -> BudgetSolution | LambdaSearch:
    """The DP the labels come from (see :class:`HelperLabelConfig`)."""
    if cfg.policy == "budget":
        return solve_budget(model, cfg.budget, cfg.costs)
    return search_lambda(model, cfg.lagrangian_usage, costs=cfg.costs)


def label_examples(
    model: TabularModel, cfg: HelperLabelConfig | None = None, solution: BudgetSolution | LambdaSearch | None = None
) -> list[HelperExample]:
    """One example per (logged non-terminal state text, budget left b = 1 … cfg.budget)."""
    cfg = cfg or HelperLabelConfig()
    sol = solution if solution is not None else solve_for_labels(model, cfg)
    if len(model.actors) > 1:
        return multi_actor_examples(model, cfg, sol)
    top = cfg.budget
    if isinstance(sol, BudgetSolution):
        if sol.budget < top and sol.budget < model.n_levels:
            raise TrainingError(f"the DP was solved for budget {sol.budget}; labels need up to {top}")
        labels = sol.labels(reachable_only=cfg.reachable_only)
        if cfg.ties in ("now", "frugal"):  # every step where asking is optimal and helps, not only π*'s last one
            now = ask_now_labels(sol, frugal=cfg.ties == "frugal")
            labels = np.where(labels < 0, labels, now).astype(np.int8)
        cols = [min(b, sol.budget) for b in range(top + 1)]
        table = labels[:, cols]
    else:
        per_state = sol.upper.labels(reachable_only=cfg.reachable_only)
        table = np.repeat(per_state[:, None], top + 1, axis=1)
    out = []
    both = logged_both(model) if cfg.logged_only else None
    for i in range(model.n_states):
        if both is not None and not both[i]:
            continue
        step = int(model.depth[i])
        for b in range(1, top + 1):
            y = int(table[i, b])
            if y < 0:
                continue
            for text, task in model.info[i].texts:
                out.append(HelperExample(text, step, b, y, task))
    if not out:
        raise TrainingError("the DP gave no labelled states (is reachable_only pruning everything?)")
    return out


def logged_both(model: TabularModel) -> np.ndarray:
    """Per state: were both the base's step and some intervention's step logged there (bool (n,))."""
    return (model.counts[:, 0] > 0) & (model.counts[:, 1:].sum(axis=1) > 0)


def multi_actor_examples(
    model: TabularModel, cfg: HelperLabelConfig, solution: BudgetSolution | LambdaSearch
) -> list[HelperExample]:
    """Labels when the table has several interventions: one example per (state text, budget left,
    offer, actor offered), labelled 1 when the DP restricted to that offer asks that actor there
    (``ties`` now / frugal: when asking that actor now is optimal and helps, :func:`ask_now_actions`).

    The offers are all the actors (the mixed helper) and each actor alone (the single-kind helpers),
    so one model learns whether and whom to ask under any of them. ``lagrangian`` labels cover the
    mixed offer only (the λ search has no per-actor restriction).
    """
    top = cfg.budget
    # per offer: its actors, the label of each (state, budget left, action h), and the mask (-1: unlabelled)
    offers: list[tuple[tuple[str, ...], np.ndarray, np.ndarray | None]] = []
    every = tuple(model.actors)
    if isinstance(solution, BudgetSolution):
        for offer in [every] + [(a,) for a in every]:
            sol = solution if offer == every else solve_budget(model, cfg.budget, cfg.costs, offer)
            if sol.budget < top and sol.budget < model.n_levels:
                raise TrainingError(f"the DP was solved for budget {sol.budget}; labels need up to {top}")
            cols = [min(b, sol.budget) for b in range(top + 1)]
            if cfg.ties in ("now", "frugal"):
                asks = ask_now_actions(sol, frugal=cfg.ties == "frugal", actors=offer)[:, cols]
            else:
                asks = _one_hot_choice(sol.choice[:, cols], model.n_actions)
            offers.append((offer, asks, sol.labels(reachable_only=cfg.reachable_only)[:, cols]))
    else:
        upper = solution.upper
        mask = upper.labels(reachable_only=cfg.reachable_only)
        choice = np.repeat(upper.choice[:, None], top + 1, axis=1)
        offers.append((every, _one_hot_choice(choice, model.n_actions), np.repeat(mask[:, None], top + 1, axis=1)))
    out = []
    both = logged_both(model) if cfg.logged_only else None
    for offer, asks, mask in offers:
        for i in range(model.n_states):
            if both is not None and not both[i]:
                continue
            step = int(model.depth[i])
            for b in range(1, top + 1):
                if mask is not None and mask[i, b] < 0:
                    continue
                for actor in offer:
                    y = int(asks[i, b, 1 + model.actors.index(actor)])
                    for text, task in model.info[i].texts:
                        out.append(HelperExample(text, step, b, y, task, actor=actor, offered=offer))
    if not out:
        raise TrainingError("the DP gave no labelled states (is reachable_only pruning everything?)")
    return out


def _one_hot_choice(choice: np.ndarray, n_actions: int) -> np.ndarray:
    """π*'s chosen action per (state, budget) → int8 (…, n_actions) with a 1 at the chosen one."""
    return (choice[..., None] == np.arange(n_actions)).astype(np.int8)


def balanced_accuracy(pred: Sequence[int], labels: Sequence[int]) -> float:
    """Mean of the true-positive and true-negative rates (NaN when a class is absent)."""
    p, y = np.asarray(pred, dtype=bool), np.asarray(labels, dtype=bool)
    if y.all() or (~y).all():
        return float("nan")
    return float(0.5 * (np.mean(p[y]) + np.mean(~p[~y])))


def resample_minority(examples: list[HelperExample], seed: int) -> list[HelperExample]:
    """Repeat minority-class examples (seeded) until both classes are equally frequent."""
    pos = [x for x in examples if x.label]
    neg = [x for x in examples if not x.label]
    if not pos or not neg:
        return examples
    small, big = (pos, neg) if len(pos) < len(neg) else (neg, pos)
    rng = random.Random(seed)
    extra = [small[rng.randrange(len(small))] for _ in range(len(big) - len(small))]
    return big + small + extra


# ----------------------------------------------------------------------------------- trainer
class HelperTrainer(BaseTrainer):
    """Train a :class:`HelperClassifier` or :class:`HelperLM` on DP labels; held-out split by task."""

    unit = "examples"
    model_class = (HelperClassifier, HelperLM)
    config_class = HelperConfig
    config: HelperConfig

    def __init__(
        self,
        model: HelperClassifier | HelperLM,
        config: HelperConfig | None = None,
        train_dataset: Sequence[HelperExample] = (),
        eval_dataset: Sequence[HelperExample] | None = None,
        callbacks: Sequence[Callable[[TrainState, dict[str, Any]], None]] | None = None,
    ) -> None:
        super().__init__(model, config, train_dataset, eval_dataset, None, callbacks)
        config = self.config
        labels = [x.label for x in self.train_data]
        n, n_pos = len(labels), int(sum(labels))
        if n_pos == 0 or n_pos == n:
            raise TrainingError(
                f"all {n} training labels are {'ask' if n_pos else 'continue'}: nothing to learn "
                "(collect with more help rates, or change the label budget)"
            )
        self.class_weight = (1.0, 1.0)
        if config.balance == "weight":
            self.class_weight = (n / (2.0 * (n - n_pos)), n / (2.0 * n_pos))
        elif config.balance == "resample":
            self.train_data = resample_minority(self.train_data, config.seed)
        self.label_counts = {"train_ask": n_pos, "train_continue": n - n_pos}

    def _examples(self, data: list[Any], what: str) -> list[HelperExample]:
        for k, x in enumerate(data):
            if not isinstance(x, HelperExample):
                raise TrainingError(f"{what}[{k}]: expected a HelperExample, got {type(x).__name__}")
            if x.label not in (0, 1):
                raise TrainingError(f"{what}[{k}]: label {x.label!r} must be 0 (continue) or 1 (ask)")
        return data

    def _group_key(self, example: HelperExample) -> str:
        return example.task_id

    def _data_fingerprint(self) -> str:
        rows = [f"{len(x.state_text)}|{x.step}|{x.budget_left}|{x.label}|{x.task_id}"
                + (f"|{x.actor}|{','.join(x.offered)}" if x.actor is not None else "") for x in self.train_data]
        return fingerprint(rows)

    def _featurize(self, examples: list[HelperExample]) -> list[dict[str, Any]]:
        feats = self.model.encode([x.text for x in examples])
        w0, w1 = self.class_weight
        return [
            {"x": f, "y": x.label, "w": w1 if x.label else w0, "length": len(f["input_ids"])}
            for f, x in zip(feats, examples, strict=True)
        ]

    def _batch_loss(self, model: Any, items: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        import torch
        import torch.nn.functional as F

        device = self.model.device
        batch = self.model.collate([it["x"] for it in items], device)
        y = torch.tensor([it["y"] for it in items], dtype=torch.float32, device=device)
        w = torch.tensor([it["w"] for it in items], dtype=torch.float32, device=device)
        if isinstance(self.model, HelperLM):
            logp = model(**batch)  # (B, 2): log p(continue), log p(ask) over the whole vocabulary
            chosen = torch.where(y > 0.5, logp[:, 1], logp[:, 0])
            loss = -(w * chosen).sum() / w.sum()  # SFT: the LM loss of the right answer's token
            logit = (logp[:, 1] - logp[:, 0]).detach()
        else:
            logit = self.model.logits(batch, model).float()
            loss = (w * F.binary_cross_entropy_with_logits(logit, y, reduction="none")).sum() / w.sum()
        acc = float(((logit > 0).float() == y).float().mean())
        return loss, {"loss": float(loss.detach()), "accuracy": acc}

    def evaluate(self, examples: Sequence[HelperExample] | None = None) -> dict[str, Any]:
        """Balanced accuracy vs the DP labels, accuracy, AUROC and ask rates on ``examples``."""
        data = self.eval_data if examples is None else list(examples)
        if not data:
            return {"n": 0}
        logits = self._score_sharded(self.model.encode([x.text for x in data])).astype(np.float64)
        probs = 1.0 / (1.0 + np.exp(-logits))
        pred = probs > self.config.threshold
        y = np.array([x.label for x in data], dtype=bool)
        return {
            "n": len(data),
            "tasks": len({x.task_id for x in data}),
            "balanced_accuracy": balanced_accuracy(pred, y),
            "accuracy": float(np.mean(pred == y)),
            "auroc": auroc(probs, y.astype(float)),
            "label_ask_rate": float(np.mean(y)),
            "predicted_ask_rate": float(np.mean(pred)),
            "true_positive_rate": float(np.mean(pred[y])) if y.any() else float("nan"),
            "true_negative_rate": float(np.mean(~pred[~y])) if (~y).any() else float("nan"),
        }


# ----------------------------------------------------------------------------------- entry points
def build_helper_model(config: HelperConfig) -> HelperClassifier | HelperLM:
    """The untrained network the config names (``minilm``, ``smollm2-lora`` or a local folder)."""
    from transformers import AutoConfig

    from agentcritic.rm.backbone import is_encoder, resolve_backbone

    name = config.backbone
    max_length = config.max_length or 256
    lora = LoraSettings(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout)
    if name.lower() in SMOLLM2_ALIASES:
        return HelperLM(name, max_length=max_length, lora=lora, seed=config.seed)
    path = resolve_backbone(name)
    if is_encoder(AutoConfig.from_pretrained(str(path))):
        return HelperClassifier(path if name.lower() != "minilm" else "minilm", max_length=max_length, seed=config.seed)
    return HelperLM(path, max_length=max_length, lora=lora, seed=config.seed)


def train_helper(
    examples: Sequence[HelperExample],
    config: HelperConfig | None = None,
    out: str | Path | None = None,
    *,
    eval_examples: Sequence[HelperExample] | None = None,
    model: HelperClassifier | HelperLM | None = None,
    callbacks: Sequence[Callable[[TrainState, dict[str, Any]], None]] | None = None,
    view_env: str | None = None,
) -> dict[str, Any]:
    """Train a helper on DP-labelled examples; return the metrics (``eval.balanced_accuracy`` …).

    With ``out`` the folder gets ``model/``, ``helper.json`` and ``metrics.json`` (plus resumable
    checkpoints); ``load_helper(out)`` gives the trained :class:`~agentcritic.helper.helper_model.Helper`.
    Pass ``model`` to train a network you hold (it is trained in place). ``view_env``: the env whose
    ``helper_view`` the examples' state texts already went through (``view = "env"``); the saved
    helper reads live states through it too.
    """
    config = config or HelperConfig()
    if out is not None:
        config = config.model_copy(update={"output_dir": str(out)})
    net = model or build_helper_model(config)
    trainer = HelperTrainer(net, config, examples, eval_examples, callbacks)
    metrics = trainer.train()
    metrics["labels"] = trainer.label_counts
    if out is not None:
        write_helper_settings(Path(out), net.kind, config.threshold, config.labels.budget, backbone=config.backbone,
                              costs=dict(config.labels.costs), view_env=view_env)
        atomic_write(Path(out) / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
    return metrics


# ----------------------------------------------------------------------------------- the stage
def with_collection_settings(labels: HelperLabelConfig, data: str | Path) -> HelperLabelConfig:
    """``labels`` with what the collection decides filled in: the intervention costs and takeovers
    where not given, so the labels are solved in the units the Gate will spend, and an ``auto`` state
    key resolved (prefix for a sweep, else bins; :func:`resolve_state_key`). Data without a recorded
    collect run: costs as given."""
    key = resolve_state_key(labels.state_key, data)
    collect = recorded_collection(data)
    if collect is None:
        return labels.model_copy(update={"state_key": key})
    costs = {**{i.actor: i.cost for i in collect.offered}, **labels.costs}
    takeovers = {**{i.actor: i.takeover for i in collect.offered}, **labels.takeovers}
    return labels.model_copy(update={"costs": costs, "takeovers": takeovers, "state_key": key})


def view_env_of(helper: HelperConfig, data: str | Path) -> str | None:
    """The env whose ``helper_view`` the helper reads states through: the collection's env for
    ``view = "env"``, None for the state text as is."""
    if helper.view == "state":
        return None
    collect = recorded_collection(data)
    if collect is None:
        raise TrainingError(f"helper.view = 'env' reads states through the collection's env, but {data} was not "
                            "written by a collect run (no recorded env): give a collect run folder, or use "
                            "helper.view = 'state'")
    return collect.env


class TrainHelperConfig(StageConfig):
    """``agentcritic train-helper``: logged episodes + PRM → table → DP labels → a trained helper."""

    data: str = Field(description="a collect run folder (or one episodes .jsonl file): one episode per line")
    prm: str | None = Field(
        None, description="a train-prm run folder or saved PRM folder (needed for the fallback and bins)"
    )
    helped_actor: str = Field("intervention", description="the actor tag the PRM was trained with for h=1")
    prm_batch_size: int = Field(64, ge=1, description="PRM inputs per forward when scoring the table's states")
    device: str | None = Field(None, description="torch device for the PRM and the helper; None = CPU / Accelerate")
    helper: HelperConfig = Field(default_factory=HelperConfig, description="helper backbone, labels and training")


def run_train_helper(config: TrainHelperConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """The whole stage into run folder ``out`` (resumable; a finished run returns its metrics).

    Writes ``config.toml``, ``dp.json`` (table summary, DP-predicted success and usage per budget),
    ``labels.jsonl`` (the examples), then the helper (``model/``, ``helper.json``, ``metrics.json``).
    """
    out = Path(out)
    labels_cfg = with_collection_settings(config.helper.labels, config.data)
    if config.prm is None and labels_cfg.state_key == "bins":  # before anything is written
        raise TrainingError("the 'bins' state key (the default) bins states by PRM score: give --prm RUN "
                            "(a train-prm run folder), or use --state-key prefix")
    view_env = view_env_of(config.helper, config.data)  # a view without a recorded env: said before any work
    store = RunStore(out)  # claimed by the stage contract (agentcritic.stage)
    if store.is_done(STAGE) and (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text("utf-8"))
    episodes = read_episodes(config.data)
    config = config.model_copy(update={"helper": config.helper.model_copy(update={"labels": labels_cfg})})
    scorer = None
    if config.prm is not None:
        # the PRM's scores of the table's states are kept in the run: a rerun does not score them again
        scorer = MemoScorer.load(prm_scorer(load_prm(config.prm, config.device), config.helped_actor,
                                            config.prm_batch_size), out / SCORES_FILE, prm_identity(config.prm))
    table = TabularModel.from_episodes(
        episodes,
        state_key=labels_cfg.state_key,
        prm=scorer,
        n_min=labels_cfg.n_min,
        kappa=labels_cfg.kappa,
        n_bins=labels_cfg.n_bins,
        takeovers=labels_cfg.takeovers,
        default_actor=next(iter(labels_cfg.costs), DEFAULT_ACTOR),
    )
    if scorer is not None:
        scorer.save(out / SCORES_FILE, prm_identity(config.prm))
    solution = solve_for_labels(table, labels_cfg)
    examples = label_examples(table, labels_cfg, solution)
    if view_env is not None:
        view = state_view(view_env)
        examples = [replace(x, state_text=view(x.state_text)) for x in examples]
    store.write_json("dp.json", dp_summary(table, labels_cfg.budget, labels_cfg.costs))
    store.write_text("labels.jsonl", "".join(json.dumps(asdict(x), ensure_ascii=False) + "\n" for x in examples))
    metrics = train_helper(examples, config.helper, out, view_env=view_env)
    store.mark_done(STAGE, examples=len(examples), states=table.n_states)
    return {**metrics, "examples": len(examples), "states": table.n_states}


def dp_summary(table: TabularModel, budget: int, costs: dict[str, float] | None = None) -> dict[str, Any]:
    """Table sizes and the DP's predicted success and usage (cost units) for b = 0 … budget (and no cap)."""
    from agentcritic.helper.dp import solve_lagrangian

    sol = solve_budget(table, budget, costs)
    free = solve_lagrangian(table, 0.0, costs)
    return {
        "table": table.summary(),
        "costs": sol.costs,
        "budgets": [
            {
                "budget": b,
                "predicted_success": table.mean_over_tasks(sol.values[:, b]),
                "mean_usage": table.mean_over_tasks(sol.usage[:, b]),
            }
            for b in range(budget + 1)
        ]
        + [{"budget": "unlimited", "predicted_success": free.predicted_success, "mean_usage": free.mean_usage}],
    }
