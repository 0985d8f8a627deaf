"""The reward-model stages behind ``agentcritic train-rm`` / ``eval-rm`` / ``serve-rm``, as library calls.

A training run is a folder::

    RUN/config.toml                 the resolved TrainRMConfig (a different config is refused)
    RUN/manifest.json               stage "train_rm" marked done at the end
    RUN/checkpoints/step-N/         resumable trainer state (see base_trainer)
    RUN/model/                      save_pretrained folder (AutoModelForSequenceClassification, num_labels=1)
    RUN/metrics.json                training log, held-out accuracy per source
    RUN/split.json                  data files, train/held-out counts, envs and sources trained on
    RUN/heldout_preferences.jsonl   the held-out pairs (whole tasks), for eval-rm
    RUN/rm_eval.json                written by eval-rm

Re-running the same train-rm command resumes from the newest checkpoint, or returns at once when
the run is finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from agentcritic.config import ConfigError, StageConfig
from agentcritic.rm.evaluation import (
    EVAL_FILE,
    PreferenceDataError,
    env_of,
    pair_labels,
    preference_metrics,
    read_preference_files,
    read_preferences,
    score_preferences,
    write_report,
)
from agentcritic.rm.pairs import explorer_of, intent_source_of, pair_tasks
from agentcritic.rm.reward_config import RewardConfig
from agentcritic.store import RunStore, StoreError, atomic_write
from agentcritic.types import Preference

log = logging.getLogger("agentcritic.rm")

STAGE = "train_rm"
SPLIT_FILE = "split.json"
HELDOUT_FILE = "heldout_preferences.jsonl"
MODEL_DIR = "model"


class TrainRMConfig(StageConfig):
    """Train an outcome reward model on preference files into a run folder."""

    data: list[str] = Field(min_length=1, description="preferences.jsonl files to train on (one Preference a line)")
    eval_data: list[str] = Field(
        default_factory=list,
        description="held-out preference files; empty = hold out train.eval_fraction of the pairs, whole tasks",
    )
    backbone: str = Field(
        "minilm", description="'minilm' (shipped all-MiniLM-L6-v2) or a local Hugging Face model folder"
    )
    max_length: int = Field(512, ge=8, description="tokens per (intent, trajectory) input; longer ones are cut")
    pooling: Literal["auto", "mean", "cls", "last"] = Field(
        "auto", description="auto = [CLS] for encoders, last token for decoders"
    )
    lora: dict[str, Any] | None = Field(
        None, description="LoRA adapters for large decoders, e.g. {r = 64, alpha = 16}; None trains all weights"
    )
    device: str | None = Field(None, description="torch device; None = CPU (or what Accelerate picks)")
    train: RewardConfig = Field(
        default_factory=RewardConfig, description="trainer settings (output_dir is the run folder)"
    )


class EvalRMConfig(StageConfig):
    """Evaluate a trained reward model on preference files."""

    model: str = Field(description="a train-rm run folder or a saved model folder")
    data: list[str] = Field(min_length=1, description="preference files to evaluate on")
    output: str | None = Field(None, description="JSON report path; None = rm_eval.json in the run folder")
    batch_size: int = Field(64, ge=1, description="inputs per forward")
    bins: int = Field(20, ge=2, description="bins of the chosen/rejected score histograms")
    plot: bool = Field(False, description="also draw the histograms as a PNG beside the report (drawn by the command)")
    cross_domain: bool = Field(
        False, description="also train a fresh model per env and test it on the other envs (needs 2+ envs)"
    )
    cross_domain_backbone: str | None = Field(
        None, description="backbone of those fresh models; None = the model's own"
    )
    cross_domain_train: RewardConfig = Field(
        default_factory=lambda: RewardConfig(progress=False), description="trainer settings of those fresh models"
    )
    device: str | None = Field(None, description="torch device; None = CPU")
    progress: bool = Field(True, description="show a progress bar while scoring")


class ServeRMConfig(StageConfig):
    """Serve a saved reward model over HTTP."""

    model: str = Field(description="a train-rm run folder or a saved model folder")
    host: str = Field("127.0.0.1", description="interface to bind; anything but loopback should use a token")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (8765: vLLM's 8000 is often taken by the policy)")
    token_env: str = Field(
        "AGENTCRITIC_RM_TOKEN", description="environment variable holding the bearer token; unset = no token"
    )
    require_token: bool = Field(False, description="refuse to start when token_env is unset")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="largest request body accepted (413 above)")
    max_batch: int = Field(256, ge=1, description="most items in one request (413 above)")
    batch_wait_ms: float = Field(5.0, ge=0.0, description="how long the micro-batcher collects concurrent requests")
    max_micro_batch: int = Field(64, ge=1, description="most items scored in one forward across requests")
    score_batch_size: int = Field(32, ge=1, description="inputs per forward")
    max_batch_tokens: int | None = Field(
        None, ge=1, description="most tokens in one forward across requests; None = score_batch_size x max_length"
    )
    body_timeout_s: float | None = Field(
        30.0, gt=0, description="a request body not received in full within this many seconds gets 408"
    )
    device: str | None = Field(None, description="torch device; None = CPU")


# ----------------------------------------------------------------------------------- helpers
def _intent_hash(intent: str) -> str:
    return hashlib.sha1(intent.encode("utf-8", "replace")).hexdigest()[:16]


def resolve_model_dir(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(model folder, run folder) for a run folder or a model folder given by the user."""
    from agentcritic.rm.scoring_model import SETTINGS_FILE, ModelFolderError

    p = Path(path)
    if (p / MODEL_DIR / SETTINGS_FILE).exists():
        return p / MODEL_DIR, p
    if (p / SETTINGS_FILE).exists():
        run = p.parent if (p.parent / SPLIT_FILE).exists() else p
        return p, run
    if not p.exists():
        raise ModelFolderError(f"{p}: no such folder")
    if (p / "checkpoints").is_dir():
        raise ModelFolderError(f"{p}: training has not finished (no {MODEL_DIR}/ yet); re-run train-rm to resume it")
    raise ModelFolderError(f"{p}: neither a train-rm run folder (with {MODEL_DIR}/) nor a saved reward model")


def split_preferences(prefs: list[Preference], fraction: float, seed: int) -> tuple[list[Preference], list[Preference]]:
    """(train, held-out) with every task wholly on one side (the trainer's own split).

    A pair belongs to the tasks (``env/task_id``) of its two trajectories, so no trajectory, and no
    intent of a held-out task, is trained on. Seeded: the same pairs and seed give the same split.
    """
    from agentcritic.rm.base_trainer import group_split

    train_idx, eval_idx = group_split([pair_tasks(p) for p in prefs], fraction, seed)
    return [prefs[i] for i in train_idx], [prefs[i] for i in eval_idx]


def _write_jsonl(path: Path, prefs: list[Preference]) -> None:
    atomic_write(path, "".join(p.to_json() + "\n" for p in prefs))


def data_digest(paths: list[str]) -> str:
    """A digest of the data files' bytes, so a finished run notices when its data changed."""
    h = hashlib.sha1()
    for path in paths:
        file = Path(path)
        if not file.is_file():
            raise PreferenceDataError(f"{file}: no such preference file")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _counts(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------------- train-rm
def train_rm(cfg: TrainRMConfig, out: str | os.PathLike[str], progress: bool = True) -> dict[str, Any]:
    """Train (or resume, or return the finished) reward model of run folder ``out``; return its metrics.

    The returned dict is ``metrics.json`` plus ``"resumed"`` (finished before this call) and
    ``"out"``.
    """
    root = Path(out)
    store = RunStore(root)  # claimed by the stage contract (agentcritic.stage)
    try:
        digest = data_digest([*cfg.data, *cfg.eval_data])
        if store.is_done(STAGE) and (root / "metrics.json").exists() and (root / MODEL_DIR).is_dir():
            done = store.manifest["stages"][STAGE]
            if done.get("data_digest") not in (None, digest):
                raise StoreError(
                    f"{root} holds a model trained on other contents of {cfg.data}; "
                    "the data files changed since: train into a new --out folder"
                )
            metrics = json.loads((root / "metrics.json").read_text("utf-8"))
            return {**metrics, "resumed": True, "out": str(root)}
        prefs = read_preference_files(cfg.data)
        if cfg.eval_data:
            train, held = prefs, read_preference_files(cfg.eval_data)
        else:
            train, held = split_preferences(prefs, cfg.train.eval_fraction, cfg.train.seed)
        if not train:
            raise PreferenceDataError("no training pairs are left after holding out; lower train.eval_fraction")
        _write_jsonl(root / HELDOUT_FILE, held)
        split = {
            "data": list(cfg.data),
            "eval_data": list(cfg.eval_data),
            "n_train": len(train),
            "n_heldout": len(held),
            "train_envs": _counts([env_of(p) for p in train]),
            "train_sources": _counts([p.source for p in train]),
            "heldout_envs": _counts([env_of(p) for p in held]),
            "heldout_sources": _counts([p.source for p in held]),
            "train_explorers": _counts([explorer_of(p) for p in train]),
            "heldout_explorers": _counts([explorer_of(p) for p in held]),
            "train_intent_sources": _counts([intent_source_of(p) for p in train]),
            "heldout_intent_sources": _counts([intent_source_of(p) for p in held]),
            "split_by": "task",
            "train_intents": sorted({_intent_hash(p.intent) for p in train}),
            "train_tasks": sorted({_intent_hash(k) for p in train for k in pair_tasks(p)}),
        }
        store.write_json(SPLIT_FILE, split)

        from agentcritic.rm.backbone import LoraSettings
        from agentcritic.rm.reward_model import RewardModel
        from agentcritic.rm.reward_trainer import train_reward_model

        rm = RewardModel(
            cfg.backbone,
            max_length=cfg.max_length,
            pooling=cfg.pooling,
            lora=LoraSettings(**cfg.lora) if cfg.lora is not None else None,
            seed=cfg.train.seed,
            device=cfg.device,
        )
        trainer_cfg = cfg.train.model_copy(update={"output_dir": str(root), "save_model": True})
        metrics = train_reward_model(rm, train, trainer_cfg, eval_preferences=held)
        store.mark_done(
            STAGE,
            n_train=len(train),
            n_heldout=len(held),
            data_digest=digest,
            heldout_accuracy=(metrics.get("eval") or {}).get("accuracy"),
        )
        return {**metrics, "resumed": False, "out": str(root)}
    finally:
        store.close()


# ----------------------------------------------------------------------------------- eval-rm
def eval_rm(cfg: EvalRMConfig) -> tuple[dict[str, Any], Path]:
    """Evaluate a saved reward model on ``cfg.data``; write the report; return (report, its path).

    Beyond :func:`~agentcritic.rm.evaluation.evaluate_reward_model` the report has ``per_file``,
    ``training_envs`` and ``cross_domain`` (accuracy on pairs of envs the model was not trained on,
    from the run's ``split.json``), ``n_seen_in_training`` (pairs whose intent was trained on),
    ``n_task_seen_in_training`` (pairs of a task trained on; None for runs older than the split by
    task) and,
    with ``cross_domain=True``, ``cross_domain_matrix``.
    """
    from agentcritic.rm.reward_model import RewardModel
    from agentcritic.rm.scoring_model import read_settings

    model_dir, run_dir = resolve_model_dir(cfg.model)
    per_file = [(str(path), read_preferences(path)) for path in cfg.data]
    for path, prefs in per_file:
        if not prefs and Path(path).name == HELDOUT_FILE:
            raise PreferenceDataError(
                f"{path}: train-rm held no pairs out. The held-out split is by task and keeps every task whole, "
                "so data from a single task (or train.eval_fraction = 0) leaves nothing to hold out; synthesize "
                "more tasks, or give train-rm held-out files with eval_data"
            )
        if not prefs:
            raise PreferenceDataError(f"{path}: holds no preference pairs")
    prefs = [p for _, ps in per_file for p in ps]
    rm = RewardModel.from_pretrained(model_dir, device=cfg.device)
    chosen, rejected = score_preferences(rm, prefs, batch_size=cfg.batch_size, progress=cfg.progress)
    labels = pair_labels(prefs)
    envs, sources = labels["envs"], labels["sources"]
    report = preference_metrics(chosen, rejected, sources, envs, bins=cfg.bins,
                                explorers=labels["explorers"], intent_sources=labels["intent_sources"])
    report["model"] = str(model_dir)
    report["data"] = [path for path, _ in per_file]

    files: dict[str, Any] = {}
    start = 0
    for path, ps in per_file:
        sl = slice(start, start + len(ps))
        sub = preference_metrics(chosen[sl], rejected[sl], sources[sl], envs[sl], bins=cfg.bins)
        files[path] = {k: sub[k] for k in ("n", "accuracy", "mean_margin")}
        start += len(ps)
    report["per_file"] = files

    split_path = run_dir / SPLIT_FILE
    report["training_envs"] = None
    report["cross_domain"] = None
    report["n_seen_in_training"] = None
    report["n_task_seen_in_training"] = None
    if split_path.exists():
        split = json.loads(split_path.read_text("utf-8"))
        trained_envs = sorted(split.get("train_envs", {}))
        report["training_envs"] = trained_envs
        seen = set(split.get("train_intents", []))
        report["n_seen_in_training"] = sum(_intent_hash(p.intent) in seen for p in prefs)
        if "train_tasks" in split:
            tasks = set(split["train_tasks"])
            report["n_task_seen_in_training"] = sum(
                any(_intent_hash(k) in tasks for k in pair_tasks(p)) for p in prefs
            )
        unseen = [i for i, e in enumerate(envs) if e not in trained_envs]
        if unseen:
            sub = preference_metrics(
                chosen[unseen], rejected[unseen], [sources[i] for i in unseen], [envs[i] for i in unseen], bins=cfg.bins
            )
            report["cross_domain"] = {
                "envs": sorted({envs[i] for i in unseen}),
                **{k: sub[k] for k in ("n", "accuracy", "mean_margin")},
            }

    if cfg.cross_domain:
        from agentcritic.rm.evaluation import cross_domain_matrix

        doc = read_settings(model_dir)
        backbone = cfg.cross_domain_backbone or doc.get("backbone") or "minilm"
        text = doc.get("text", {})

        def make_model() -> RewardModel:
            return RewardModel(
                backbone,
                max_length=int(text.get("max_length", rm.max_length)),
                pooling=doc.get("pooling", "auto"),
                seed=cfg.cross_domain_train.seed,
                device=cfg.device,
            )

        report["cross_domain_matrix"] = cross_domain_matrix(
            make_model, prefs, cfg.cross_domain_train, env_names=envs, batch_size=cfg.batch_size
        )

    path = Path(cfg.output) if cfg.output else run_dir / EVAL_FILE
    write_report(report, path)
    return report, path


def run_eval_rm(cfg: EvalRMConfig, out: str | os.PathLike[str], progress: bool = True) -> dict[str, Any]:
    """The ``eval-rm`` stage: :func:`eval_rm` with its report in the stage folder ``out`` by default."""
    if cfg.output is None:
        cfg = cfg.model_copy(update={"output": str(Path(out) / EVAL_FILE)})
    report, path = eval_rm(cfg)
    # relative to the stage folder (what readers join it to), or absolute when written elsewhere
    try:
        shown = str(path.resolve().relative_to(Path(out).resolve()))
    except ValueError:
        shown = str(path.resolve())
    return {"accuracy": report.get("accuracy"), "pairs": report.get("n"), "report": shown, "errors": 0}


# ----------------------------------------------------------------------------------- serve-rm
def serve_rm(cfg: ServeRMConfig) -> None:
    """Load the model and serve it until interrupted (blocking)."""
    from agentcritic.rm.server import serve

    model_dir, _ = resolve_model_dir(cfg.model)
    token = os.environ.get(cfg.token_env) or None
    if token is None and cfg.require_token:
        raise ConfigError(
            f"a token was asked for, but the environment variable {cfg.token_env} is not set; "
            f"export {cfg.token_env}=<secret> first"
        )
    options = cfg.model_dump(include={"host", "port", "device", "max_body_bytes", "max_batch", "batch_wait_ms",
                                      "max_micro_batch", "score_batch_size", "max_batch_tokens",
                                      "body_timeout_s"})  # server options of the same name
    serve(model_dir, token=token, token_env=None, **options)


__all__ = [
    "EvalRMConfig",
    "ServeRMConfig",
    "TrainRMConfig",
    "eval_rm",
    "resolve_model_dir",
    "serve_rm",
    "split_preferences",
    "train_rm",
]
