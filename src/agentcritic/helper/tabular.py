"""The empirical model of logged self-regulation episodes (selfreg.md Phase 2b).

Logged episodes (lists of :class:`~agentcritic.types.Transition` plus the episode's success) become
a table of states with counts ``N(s, h, s')`` for h = 0 (the base policy acted) and h = 1 (the
intervention acted), ``P̂(s'|s,h) = N(s,h,s') / N(s,h)``, and terminal outcomes carrying their mean
success. Two state keys:

- ``prefix`` (default): (step, task id, the collector's state key — the action sequence so far); an
  exact per-task tree.
- ``bins``: (step, PRM-score bin of PRM(s, 0), last actor); shared across tasks, coarser.

Where the table knows too little — ``N(s,h) < n_min``, e.g. a state that was only ever left by the
base policy has no data for h = 1 — the value of (s, h) comes from the PRM: ``PRM(s, h)`` estimates
P(success | s, next action by h, base policy after), so such an edge leads to "base policy from
here", with no further interventions. With ``kappa > 0`` every table value is shrunk towards the
PRM: ``(N·Q̂ + κ·PRM) / (N + κ)``.

Layout for the solvers (:mod:`agentcritic.helper.dp`): states are numbered level by level (by
step), ``level_ptr[d] : level_ptr[d+1]`` being the states of step d; successors of a state always
lie in a deeper level. For each h the successors are a CSR list (``succ_ptr[h]``, ``succ_idx[h]``,
``succ_prob[h]``) over *non-terminal* next states; the mass that ended the episode is folded into
``term_value[h]`` (Σ over terminal outcomes of P̂ · success). The solvers use the derived arrays
``base[h]`` and ``edge_weight[h]``: ``Q(s,h) = base[h][s] + Σ_k edge_weight[h][k] · V(succ_idx[h][k])``.

Several interventions: h = 1 + i is "ask intervention ``actors[i]``" (the names logged in
``Transition.actor``), so a table of episodes helped by two kinds lets the solver choose between them.
With one intervention (the usual collection) h ∈ {0, 1} as above.

Takeovers: an intervention with ``takeovers[actor] = k`` acts for k steps per request. The steps after
the first are not decisions (nobody is asked), so they are not states of the table: the request's edge
leads to the state k steps later, and the DP charges one request for it — as the Gate does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.types import Transition

StateKeyKind = Literal["prefix", "bins"]
#: a PRM: (state text, helped) pairs -> P(success) for each; a ProcessRewardModel's ``score`` fits
PRMScorer = Callable[[Sequence[tuple[str, bool]]], Sequence[float]]

NO_ACTOR = "none"
#: the intervention's name in a table where no helped step was logged (its h = 1 is PRM-only)
DEFAULT_ACTOR = "intervention"


class TabularError(AgentCriticError, ValueError):
    """Logged episodes or settings the tabular model cannot be built from; the message says which."""


@dataclass
class Episode:
    """One logged episode: its transitions in order and whether it succeeded."""

    transitions: list[Transition]
    success: bool

    @property
    def task_id(self) -> str:
        return self.transitions[0].task_id if self.transitions else ""


def as_episode(item: Any, k: int = 0) -> Episode:
    """Accept an :class:`Episode`, an object with ``transitions``/``success``, a (transitions, success)
    pair, a dict with those keys, or a bare list of transitions whose ``success`` field is set."""
    if isinstance(item, Episode):
        ep = item
    elif isinstance(item, dict):
        if "transitions" not in item:
            raise TabularError(f"episode {k}: a dict episode needs a 'transitions' list (got keys {sorted(item)})")
        trans = [t if isinstance(t, Transition) else Transition.from_dict(t) for t in item["transitions"]]
        ep = Episode(trans, _success_of(trans, item.get("success"), k))
    elif hasattr(item, "transitions"):
        trans = list(item.transitions)
        ep = Episode(trans, _success_of(trans, getattr(item, "success", None), k))
    elif isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], Transition):
        trans = list(item[0])
        ep = Episode(trans, _success_of(trans, item[1], k))
    elif isinstance(item, (list, tuple)):
        trans = list(item)
        ep = Episode(trans, _success_of(trans, None, k))
    else:
        raise TabularError(f"episode {k}: expected transitions and a success, got {type(item).__name__}")
    for j, t in enumerate(ep.transitions):
        if not isinstance(t, Transition):
            raise TabularError(f"episode {k}, step {j}: expected a Transition, got {type(t).__name__}")
        if t.task_id != ep.transitions[0].task_id:
            raise TabularError(
                f"episode {k}, step {j}: task id {t.task_id!r} differs from the episode's {ep.transitions[0].task_id!r}"
            )
    return ep


def _success_of(trans: Sequence[Transition], success: Any, k: int) -> bool:
    if success is None:
        known = [t.success for t in trans if getattr(t, "success", None) is not None]
        if not known:
            raise TabularError(f"episode {k}: no success recorded (neither on the episode nor on its transitions)")
        success = known[-1]
    if not isinstance(success, (bool, int, float, np.bool_)):
        raise TabularError(f"episode {k}: success must be a bool, got {success!r}")
    return bool(success)


def _scorer(prm: Any) -> PRMScorer | None:
    if prm is None:
        return None
    if hasattr(prm, "score"):
        return prm.score
    if callable(prm):
        return prm
    raise TabularError(f"prm: expected a callable or an object with .score, got {type(prm).__name__}")


def score_texts(prm: PRMScorer, texts: Sequence[str], helped: bool, batch_size: int = 256) -> np.ndarray:
    """PRM(text, helped) for every text, in order, with one progress bar; checks the values."""
    from tqdm.auto import tqdm

    out = np.empty(len(texts), dtype=np.float64)
    starts = range(0, len(texts), batch_size)
    bar = tqdm(starts, desc=f"PRM scores (h={int(helped)})", unit="batch", disable=len(starts) < 4, leave=False)
    for s in bar:
        chunk = texts[s : s + batch_size]
        vals = np.asarray(prm([(t, helped) for t in chunk]), dtype=np.float64).reshape(-1)
        if vals.shape[0] != len(chunk):
            raise TabularError(f"the PRM returned {vals.shape[0]} scores for {len(chunk)} inputs")
        out[s : s + len(chunk)] = vals
    if not np.all(np.isfinite(out)) or out.min(initial=0.0) < 0.0 or out.max(initial=0.0) > 1.0:
        raise TabularError("the PRM returned values outside [0, 1] (or NaN); it must return P(success)")
    return out


@dataclass
class StateInfo:
    """What a logged state looked like: its distinct texts and the tasks they came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (state text, task id), distinct


@dataclass(repr=False)
class TabularModel:
    """The empirical MDP over logged states; build it with :meth:`from_episodes`.

    Public arrays (index = state number, ordered level by level): ``keys``, ``depth``,
    ``level_ptr``, ``counts`` (N(s,h), shape (n, 2)), ``prm`` (PRM(s,h), shape (n, 2), NaN where
    unknown), ``term_value``, ``term_count`` and the CSR lists ``succ_ptr``, ``succ_idx``,
    ``succ_count`` per h; ``roots`` maps each task to its start states and their weights.
    The (n, 2) arrays are (n, 1 + len(actors)) when several interventions were logged.
    """

    state_key: StateKeyKind
    keys: list[tuple]
    depth: np.ndarray
    level_ptr: np.ndarray
    counts: np.ndarray
    prm: np.ndarray
    term_value: np.ndarray  # (n, 2): Σ_terminal P̂ · success  (0 where N(s,h) = 0)
    term_count: np.ndarray  # (n, 2): episodes that ended right after (s, h)
    succ_ptr: tuple[np.ndarray, ...]
    succ_idx: tuple[np.ndarray, ...]
    succ_count: tuple[np.ndarray, ...]
    roots: dict[str, tuple[np.ndarray, np.ndarray]]
    info: list[StateInfo]
    n_min: int = 1
    kappa: float = 0.0
    n_bins: int = 10
    n_episodes: int = 0
    n_transitions: int = 0
    scorer: PRMScorer | None = None
    index: dict[tuple, int] = field(default_factory=dict, repr=False)
    #: the interventions, h = 1 + position (the actor names their helped steps were logged with)
    actors: list[str] = field(default_factory=lambda: [DEFAULT_ACTOR])
    #: actions one request of an actor buys (absent: 1)
    takeovers: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {k: i for i, k in enumerate(self.keys)}
        self._derive()

    # ------------------------------------------------------------------ derived arrays
    def _derive(self) -> None:
        """Mix table and PRM: ``base`` and ``edge_weight`` per h (see the module docstring)."""
        n = self.n_states
        self.table_weight = np.zeros((n, self.n_actions))
        self.base = np.zeros((n, self.n_actions))
        self.edge_weight: list[np.ndarray] = []
        self.edge_row: list[np.ndarray] = []
        for h in range(self.n_actions):
            cnt = self.counts[:, h]
            use_table = cnt >= max(1, self.n_min)
            w = np.where(use_table, cnt / np.maximum(cnt + self.kappa, 1e-300), 0.0)
            needs_prm = w < 1.0
            if np.any(needs_prm & np.isnan(self.prm[:, h])):
                bad = int(np.flatnonzero(needs_prm & np.isnan(self.prm[:, h]))[0])
                raise TabularError(
                    f"state {self.keys[bad]!r}, h={h}: N(s,h)={int(cnt[bad])} < n_min={self.n_min} (or kappa > 0) "
                    "needs a PRM value, but no PRM scorer was given"
                )
            prm = np.nan_to_num(self.prm[:, h])
            self.table_weight[:, h] = w
            self.base[:, h] = (1.0 - w) * prm + w * self.term_value[:, h]
            ptr = self.succ_ptr[h]
            rows = np.repeat(np.arange(n), np.diff(ptr))
            probs = self.succ_count[h] / np.maximum(cnt[rows], 1.0)
            self.edge_weight.append(w[rows] * probs)
            self.edge_row.append(rows)

    # ------------------------------------------------------------------ properties
    @property
    def n_states(self) -> int:
        return len(self.keys)

    @property
    def n_actions(self) -> int:
        """1 (the base policy) + one per intervention."""
        return 1 + len(self.actors)

    @property
    def n_levels(self) -> int:
        return len(self.level_ptr) - 1

    @property
    def tasks(self) -> list[str]:
        return sorted(self.roots)

    def levels(self) -> Iterable[tuple[int, int]]:
        """(start, stop) state ranges, deepest level first (the order the solvers use)."""
        for d in range(self.n_levels - 1, -1, -1):
            a, b = int(self.level_ptr[d]), int(self.level_ptr[d + 1])
            if b > a:
                yield a, b

    def root_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(state index, weight) over all tasks' start states: weights sum to 1, each task 1/#tasks."""
        cached = getattr(self, "_root_weights", None)
        if cached is not None:
            return cached
        idx, wts = [], []
        for task in self.tasks:
            r, w = self.roots[task]
            idx.append(r)
            wts.append(w / w.sum() / len(self.roots))
        if not idx:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        self._root_weights = (np.concatenate(idx), np.concatenate(wts))
        return self._root_weights

    def mean_over_tasks(self, values: np.ndarray) -> float:
        """Mean over tasks of a per-state quantity at the task's start states (weighted by visits)."""
        idx, w = self.root_weights()
        return float(np.dot(w, values[idx])) if len(idx) else float("nan")

    # ------------------------------------------------------------------ keys
    def key_for(
        self,
        *,
        step: int,
        task_id: str = "",
        state_key: str = "",
        state_text: str = "",
        last_actor: str = NO_ACTOR,
        prm_value: float | None = None,
    ) -> tuple:
        """The table key of a live state (``bins`` needs the PRM scorer or ``prm_value``)."""
        if self.state_key == "prefix":
            return (int(step), str(task_id), str(state_key))
        if prm_value is None:
            if self.scorer is None:
                raise TabularError("bins keys need PRM(s, 0): give prm_value or build the model with a PRM")
            prm_value = float(score_texts(self.scorer, [state_text], False)[0])
        return (int(step), bin_of(prm_value, self.n_bins), str(last_actor))

    def lookup(self, key: tuple) -> int | None:
        return self.index.get(key)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_episodes(
        cls,
        episodes: Iterable[Any],
        *,
        state_key: StateKeyKind = "prefix",
        prm: Any = None,
        n_min: int = 1,
        kappa: float = 0.0,
        n_bins: int = 10,
        takeovers: dict[str, int] | None = None,
        default_actor: str = DEFAULT_ACTOR,
    ) -> TabularModel:
        """Count transitions of logged episodes into the table.

        ``prm``: a :class:`~agentcritic.rm.ProcessRewardModel` or any callable mapping
        (state text, helped) pairs to P(success); needed for ``bins`` and wherever N(s,h) < n_min.
        The transition's ``helped`` flag decides h (its ``actor`` which intervention); the actor is
        also the bins key's "last actor". ``takeovers``: actions per request of each actor (absent: 1);
        a run of helped steps by one actor is cut into requests of that length. ``default_actor``:
        the intervention's name when no helped step was logged at all.
        """
        if state_key not in ("prefix", "bins"):
            raise TabularError(f"state_key {state_key!r}: use 'prefix' or 'bins'")
        if n_min < 1:
            raise TabularError(f"n_min={n_min}: must be at least 1")
        if kappa < 0:
            raise TabularError(f"kappa={kappa}: must be >= 0")
        if n_bins < 1:
            raise TabularError(f"n_bins={n_bins}: must be at least 1")
        takeovers = {str(a): int(k) for a, k in (takeovers or {}).items()}
        bad = {a: k for a, k in takeovers.items() if k < 1}
        if bad:
            raise TabularError(f"takeovers {bad}: a takeover is a whole number of actions >= 1 per request")
        scorer = _scorer(prm)
        if state_key == "bins" and scorer is None:
            raise TabularError("state_key='bins' needs a PRM scorer (the bins are PRM(s, 0) scores)")
        eps = [as_episode(e, k) for k, e in enumerate(episodes)]
        eps = [e for e in eps if e.transitions]
        if not eps:
            raise TabularError("no logged transitions: the episodes are empty")

        if state_key == "prefix":  # check the chain before any (slow) PRM scoring
            for k, ep in enumerate(eps):
                for j in range(1, len(ep.transitions)):
                    prev, t = ep.transitions[j - 1], ep.transitions[j]
                    if prev.next_state_key != t.state_key:
                        raise TabularError(
                            f"episode {k} (task {t.task_id!r}), step {j}: state key {t.state_key!r} is not the "
                            f"previous transition's next_state_key {prev.next_state_key!r}"
                        )

        # distinct texts, scored once each
        text_id: dict[str, int] = {}
        for ep in eps:
            for t in ep.transitions:
                text_id.setdefault(t.state_text, len(text_id))
        texts = list(text_id)
        prm0 = prm1 = None
        if scorer is not None:
            prm0 = score_texts(scorer, texts, False)
            prm1 = score_texts(scorer, texts, True)

        # keys per transition
        raw_keys: list[list[tuple]] = []
        for k, ep in enumerate(eps):
            keys = []
            last = NO_ACTOR
            for j, t in enumerate(ep.transitions):
                if state_key == "prefix":
                    keys.append((j, t.task_id, t.state_key))
                else:
                    keys.append((j, bin_of(float(prm0[text_id[t.state_text]]), n_bins), last))  # type: ignore[index]
                last = t.actor
            raw_keys.append(keys)

        decisions = [decision_steps(ep.transitions, takeovers) for ep in eps]
        actors = sorted({t.actor for ep in eps for t in ep.transitions if t.helped}) or [str(default_actor)]
        action_of = {a: 1 + i for i, a in enumerate(actors)}
        n_actions = 1 + len(actors)

        # number states level by level (step, then first appearance); takeover steps are no states
        seen: dict[tuple, int] = {}
        for keys, steps in zip(raw_keys, decisions, strict=True):
            for j in steps:
                seen.setdefault(keys[j], len(seen))
        ordered = sorted(seen, key=lambda key: (key[0], seen[key]))
        index = {key: i for i, key in enumerate(ordered)}
        n = len(ordered)
        depth = np.array([key[0] for key in ordered], dtype=np.int64)
        n_levels = int(depth.max()) + 1
        level_ptr = np.searchsorted(depth, np.arange(n_levels + 1), side="left").astype(np.int64)

        counts = np.zeros((n, n_actions))
        term_count = np.zeros((n, n_actions))
        term_succ = np.zeros((n, n_actions))
        edges: list[dict[tuple[int, int], int]] = [{} for _ in range(n_actions)]
        info = [StateInfo() for _ in range(n)]
        text_seen: list[set[tuple[str, str]]] = [set() for _ in range(n)]
        prm_sum = np.zeros((n, 2))
        prm_n = np.zeros(n)
        roots: dict[str, dict[int, float]] = {}
        n_trans = 0
        for ep, keys, steps in zip(eps, raw_keys, decisions, strict=True):
            idx = [index[keys[j]] for j in steps]
            roots.setdefault(ep.task_id, {}).setdefault(idx[0], 0.0)
            roots[ep.task_id][idx[0]] += 1.0
            n_trans += len(ep.transitions)
            for j, (t, s) in enumerate(zip([ep.transitions[k] for k in steps], idx, strict=True)):
                h = action_of[t.actor] if t.helped else 0
                counts[s, h] += 1
                pair = (t.state_text, t.task_id)
                if pair not in text_seen[s]:
                    text_seen[s].add(pair)
                    info[s].texts.append(pair)
                    if prm0 is not None:
                        tid = text_id[t.state_text]
                        prm_sum[s, 0] += prm0[tid]
                        prm_sum[s, 1] += prm1[tid]  # type: ignore[index]
                        prm_n[s] += 1
                if j + 1 < len(idx):
                    nxt = (s, idx[j + 1])
                    edges[h][nxt] = edges[h].get(nxt, 0) + 1
                else:  # the episode ended after this decision: a terminal outcome
                    term_count[s, h] += 1
                    term_succ[s, h] += float(ep.success)
        with np.errstate(invalid="ignore", divide="ignore"):
            term_value = np.where(counts > 0, term_succ / np.maximum(counts, 1.0), 0.0)
            prm_tab = np.where(prm_n[:, None] > 0, prm_sum / np.maximum(prm_n, 1.0)[:, None], np.nan)
        # the PRM knows "helped", not by whom: every intervention gets PRM(s, 1)
        prm_tab = prm_tab[:, [0] + [1] * len(actors)]

        ptrs, sidx, scnt = [], [], []
        for h in range(n_actions):
            items = sorted(edges[h].items())
            src = np.array([a for (a, _), _ in items], dtype=np.int64)
            dst = np.array([b for (_, b), _ in items], dtype=np.int64)
            cnt = np.array([c for _, c in items], dtype=np.float64)
            ptrs.append(np.searchsorted(src, np.arange(n + 1), side="left").astype(np.int64))
            sidx.append(dst)
            scnt.append(cnt)
        root_arrays = {
            task: (np.array(list(r), dtype=np.int64), np.array(list(r.values()), dtype=np.float64))
            for task, r in roots.items()
        }
        return cls(
            state_key=state_key,
            keys=ordered,
            depth=depth,
            level_ptr=level_ptr,
            counts=counts,
            prm=prm_tab,
            term_value=term_value,
            term_count=term_count,
            succ_ptr=tuple(ptrs),
            succ_idx=tuple(sidx),
            succ_count=tuple(scnt),
            roots=root_arrays,
            info=info,
            n_min=n_min,
            kappa=float(kappa),
            n_bins=n_bins,
            n_episodes=len(eps),
            n_transitions=n_trans,
            scorer=scorer,
            index=index,
            actors=actors,
            takeovers={a: k for a, k in takeovers.items() if k > 1},
        )

    def __repr__(self) -> str:
        return (
            f"TabularModel(state_key={self.state_key!r}, states={self.n_states}, levels={self.n_levels}, "
            f"tasks={len(self.roots)}, transitions={self.n_transitions}, n_min={self.n_min}, kappa={self.kappa})"
        )

    def summary(self) -> dict[str, Any]:
        """Sizes and how much of the model comes from the table vs the PRM."""
        logged = self.counts > 0
        return {
            "state_key": self.state_key,
            "states": self.n_states,
            "levels": self.n_levels,
            "tasks": len(self.roots),
            "episodes": self.n_episodes,
            "transitions": self.n_transitions,
            "edges": [int(len(idx)) for idx in self.succ_idx],
            "actors": list(self.actors),
            "states_with_both_h": int(np.sum(logged.all(axis=1))),
            "prm_fallback_share": float(np.mean(self.table_weight < 1.0)),
            "n_min": self.n_min,
            "kappa": self.kappa,
        }


def bin_of(score: float, n_bins: int) -> int:
    """Equal-width bin of a probability: 0 … n_bins-1 (1.0 falls in the last bin)."""
    return int(min(max(int(score * n_bins), 0), n_bins - 1))


def decision_steps(transitions: Sequence[Transition], takeovers: dict[str, int]) -> list[int]:
    """Positions where someone decided: every base step and the first step of each request.

    A run of consecutive helped steps by one actor with takeover k holds requests at its steps 0, k,
    2k, … (the episode loop asks again only when a takeover has run out); the steps between are the
    takeover's, not decisions.
    """
    out: list[int] = []
    run = 0  # helped steps so far in the current run of one actor
    for j, t in enumerate(transitions):
        if t.helped and j > 0 and transitions[j - 1].helped and transitions[j - 1].actor == t.actor:
            run += 1
        else:
            run = 0
        if not t.helped or run % max(1, takeovers.get(t.actor, 1)) == 0:
            out.append(j)
    return out
