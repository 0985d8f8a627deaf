"""The PRM as the tabular model's scorer: load it, score (state text, helped) pairs, and keep the
scores of a run in one JSON file (``prm_scores.json``) tied to the PRM that made them, so that a
resumed run, its workers and the next stage do not score the same 1,500 states again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentcritic.helper.episode_files import EpisodeDataError
from agentcritic.store import atomic_write

#: the file a run keeps its PRM scores in
SCORES_FILE = "prm_scores.json"


def load_prm(path: str | Path, device: str | None = None) -> Any:
    """A ProcessRewardModel from a saved folder or a train-prm run folder (its ``model/``)."""
    from agentcritic.rm.process_reward_model import ProcessRewardModel
    from agentcritic.rm.scoring_model import SETTINGS_FILE

    root = Path(path)
    for candidate in (root, root / "model"):
        if (candidate / SETTINGS_FILE).exists():
            return ProcessRewardModel.from_pretrained(candidate, device=device)
    raise EpisodeDataError(f"{root}: no saved PRM here or in {root / 'model'} (train one with `agentcritic train-prm`)")


def prm_scorer(prm: Any, helped_actor: str = "intervention", batch_size: int = 64) -> Callable[..., np.ndarray]:
    """(state text, helped) pairs → P(success), with the actor tag the PRM was trained with."""

    def score(items: Sequence[tuple[str, bool]]) -> np.ndarray:
        return prm.score([(t, helped_actor if h else "agent") for t, h in items], batch_size=batch_size)

    return score


class MemoScorer:
    """A PRM scorer that remembers (state text, helped) → P(success), so that the parent's scores of
    the training table are not recomputed by every worker (``save`` / ``load``: one JSON file)."""

    def __init__(self, scorer: Callable[..., Any], known: dict[str, float] | None = None) -> None:
        self.scorer, self.known = scorer, dict(known or {})

    @staticmethod
    def key(text: str, helped: bool) -> str:
        return f"{int(bool(helped))}:{hashlib.sha1(text.encode('utf-8')).hexdigest()}"

    def __call__(self, items: Sequence[tuple[str, bool]]) -> np.ndarray:
        keys = [self.key(t, h) for t, h in items]
        missing = [i for i, k in enumerate(keys) if k not in self.known]
        if missing:
            scores = np.asarray(self.scorer([items[i] for i in missing]), dtype=np.float64).reshape(-1)
            self.known.update((keys[i], float(v)) for i, v in zip(missing, scores, strict=True))
        return np.array([self.known[k] for k in keys], dtype=np.float64)

    def save(self, path: str | Path, source: str = "") -> Path:
        """Write the scores with ``source`` (which PRM made them) to one JSON file, atomically."""
        atomic_write(Path(path), json.dumps({"source": source, "scores": self.known}, sort_keys=True))
        return Path(path)

    @classmethod
    def load(cls, scorer: Callable[..., Any], path: str | Path | None, source: str = "") -> MemoScorer:
        """A memo over ``scorer`` holding the scores in ``path`` if they came from ``source``."""
        known = {}
        if path and Path(path).is_file():
            try:
                doc = json.loads(Path(path).read_text("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                doc = {}  # an unreadable cache is only a cache: score again (and overwrite it)
            if isinstance(doc, dict) and doc.get("source") == source and isinstance(doc.get("scores"), dict):
                known = doc["scores"]
        return cls(scorer, known)


def prm_identity(path: str | Path) -> str:
    """Which PRM scored: its folder and the size and time of its files (a retrained PRM differs)."""
    root = Path(path).resolve()
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"))
    return f"{root}|" + ";".join(f"{f.relative_to(root)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def seed_scores(target: str | Path, earlier: str | Path) -> bool:
    """Start a run's score file from an earlier stage's (train-helper scored the same training
    table): copied only when the run has none yet. Whether the scores fit is checked when they are
    loaded (:meth:`MemoScorer.load` keeps them only if the same PRM made them). True if copied."""
    target, earlier = Path(target), Path(earlier)
    if target.exists() or not earlier.is_file():
        return False
    atomic_write(target, earlier.read_bytes())  # bytes: a torn or foreign file is the loader's to ignore
    return True
