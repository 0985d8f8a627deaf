"""The process reward model: P(success | trajectory prefix, who acts next).

Same machinery as the outcome reward model (:mod:`agentcritic.rm.scoring_model`) with a binary head:
one logit, trained with binary cross-entropy, read through a sigmoid. The state is the text of
:func:`agentcritic.rendering.render` of the episode so far (what the helper's episodes log as
``state_text``, and what the server renders for a trajectory). The actor of the next action is part
of the input text (selfreg.md Phase 2a: one model, not two), appended as a last line
``Next action by: <actor>`` so the truncation rule (keep the start and the last steps) never cuts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from agentcritic.rendering import render
from agentcritic.rm.scoring_model import Feature, ScoringModel
from agentcritic.types import Trajectory, Transition

ACTOR_LINE = "Next action by: {actor}"


def prm_text(state_text: str, actor: str | bool) -> str:
    """The PRM input for a state and the next actor (``True``/``False`` mean intervention/base)."""
    if isinstance(actor, bool):
        actor = "intervention" if actor else "agent"
    return f"{state_text}\n{ACTOR_LINE.format(actor=actor)}"


@dataclass
class PRMExample:
    """One labelled PRM input: the text (state + actor line) and P(success) in [0, 1]."""

    text: str
    label: float
    group: str = ""  # examples of one group (task, episode) stay on one side of a train/eval split


def examples_from_transitions(
    transitions: Iterable[Transition],
    *,
    average_by_state: bool = False,
    helped_actor: str = "intervention",
) -> list[PRMExample]:
    """Monte-Carlo labels: each logged (state, h) gets its episode's success.

    With ``average_by_state`` the label is the mean success over all transitions that share
    (state key, h), as selfreg.md allows.
    """
    rows = [t for t in transitions if t.success is not None]
    if not average_by_state:
        return [
            PRMExample(prm_text(t.state_text, helped_actor if t.helped else "agent"), float(bool(t.success)), t.task_id)
            for t in rows
        ]
    sums: dict[tuple[str, bool], list[float]] = {}
    first: dict[tuple[str, bool], Transition] = {}
    for t in rows:
        key = (t.state_key, bool(t.helped))
        sums.setdefault(key, []).append(float(bool(t.success)))
        first.setdefault(key, t)
    return [
        PRMExample(
            prm_text(first[key].state_text, helped_actor if key[1] else "agent"),
            float(np.mean(values)),
            first[key].task_id,
        )
        for key, values in sums.items()
    ]


def prefix_examples(trajectories: Iterable[Trajectory], *, helped_actor: str = "intervention") -> list[PRMExample]:
    """Every prefix of every trajectory (0..n-1 steps) before its next action, labelled with the
    episode's success: the texts :func:`examples_from_transitions` reads from a helped episode's log
    (an action of an intervention, whatever its name, is tagged ``helped_actor``)."""
    out = []
    for t in trajectories:
        if t.success is None:
            continue
        for k in range(len(t.steps)):
            prefix = Trajectory(t.env, t.task_id, t.instruction, t.steps[:k], t.success, t.score, t.meta)
            actor = "agent" if t.steps[k].actor == "agent" else helped_actor
            text = prm_text(render(t.instruction, prefix), actor)
            out.append(PRMExample(text, float(bool(t.success)), f"{t.env}/{t.task_id}"))
    return out


#: what a PRM scores: a whole input text, or (state, next actor) where the state is its text or the
#: episode so far (rendered by :func:`agentcritic.rendering.render`)
PRMItem = str | tuple[str | Trajectory, str | bool]


class ProcessRewardModel(ScoringModel):
    """P(success | state text, next actor). ``score`` returns probabilities in [0, 1]."""

    kind = "process"
    problem_type = "multi_label_classification"  # HF computes BCE-with-logits for one label

    def item_texts(self, items: Sequence[PRMItem]) -> list[tuple[None, str]]:
        """The text the model reads for each item (see :data:`PRMItem`)."""
        out: list[tuple[None, str]] = []
        for k, item in enumerate(items):
            if isinstance(item, str):
                out.append((None, item))
            elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], (str, Trajectory)):
                state = item[0]
                if isinstance(state, Trajectory):
                    state = render(state.instruction, state, raw=self.raw_observations)
                out.append((None, prm_text(state, item[1])))
            else:
                raise TypeError(f"item {k}: expected a text or (state, actor), got {item!r:.80}")
        return out

    def encode(self, items: Sequence[PRMItem]) -> list[Feature]:
        return self.encode_texts(self.item_texts(items))

    def tokenize(self, items: Sequence[PRMItem], device=None):
        return self.collate(self.encode(items), device)

    def _transform(self, logits):
        return logits.sigmoid()

    def score(self, items: Sequence[PRMItem], batch_size: int = 32) -> np.ndarray:
        """P(success) for each prefix text (or (state_text, actor) pair), in input order."""
        with self.scoring_lock:
            return self.score_features(self.encode(items), batch_size=batch_size)

    def logit_scores(self, items: Sequence[PRMItem], batch_size: int = 32) -> np.ndarray:
        """The head's logits (log-odds of success), e.g. for thresholds far from 0.5."""
        with self.scoring_lock:
            return self.score_features(self.encode(items), batch_size=batch_size, raw=True)
