"""``textworld``: TextWorldExpress games (Jansen & Côté, 2022; PyPI ``textworld_express``).

TextWorldExpress (TWX) re-implements TextWorld-style games in Scala at about a millisecond a step;
this adapter drives its ``PythonInterface`` over py4j, in a JVM of its own.

Decisions:

- **Games**: ``game="cookingworld"`` (default; cook and eat a meal from a recipe), ``"coin"`` (find
  a coin, with doors), ``"twc"`` (TextWorld Commonsense: put things where they belong), or any
  other TWX game (``mapreader``, ``arithmetic``, ``sorting``, ``simonsays``, ``peckingorder``); an
  unknown name raises :class:`EnvError` listing the valid ones. ``game_params`` is TWX's
  parameter string; the defaults (:data:`DEFAULT_GAME_PARAMS`) are small, ALFWorld-like
  settings — for cookingworld ``numLocations=3,numIngredients=2,numDistractorItems=2,
  includeDoors=0,limitInventorySize=0``. TWX rejects a bad string with a message, raised as
  :class:`EnvError` on the first ``reset`` (as does a string it accepts but cannot build from).
- **Task ids** are ``"<game>:<seed>"`` (``"cookingworld:20000"``). Splits are TWX's own folds
  (``gameFold``), whose seeds are disjoint ranges (train 0–999, dev 10000–10999, test
  20000–20999, for every game; :data:`FOLD_SEEDS`, checked against the JVM by the tests); a
  split is the first ``num_train`` / ``num_dev`` / ``num_test`` seeds of its fold (defaults
  1000 / 100 / 100, at most 1000), and the game is generated with that fold. ``reset(seed=…)``
  changes nothing: the task id fixes the game, and TWX is deterministic for a seed (checked,
  also across JVMs).
- **Steps**: the admissible commands are TWX's ``validActions``, sorted. An action that is not
  among them is invalid (``valid=False``): TWX still answers it (usually "Unknown action: I'm not
  sure what you mean.") and that answer is the observation; the state is unchanged and the step
  counts. Commands are matched exactly, as TWX does (``Look Around`` is unknown).
- **Score**: TWX's normalised score clipped to [0, 1] (the episode keeps the best score reached,
  as every env here does); ``success`` is TWX's ``tasksuccess``; the episode ends on success or
  ``taskfailure`` (e.g. eating a wrong item in cookingworld). ``max_steps`` defaults to 50.
- **Expert**: TWX's gold path for the game (generated on the first :meth:`expert_action` call for
  a task, about 15 ms, then kept), followed while the agent's actions are exactly its prefix;
  after a deviation it returns ``None``.
- **JVM**: one per env instance, started on the first ``reset`` and ended by :meth:`close` (also on
  garbage collection and when Python exits). Pickling rebuilds the env from its constructor
  arguments and replays the actions in a JVM of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from agentcritic.envs.base import SPLITS, EnvError, StepOutcome
from agentcritic.envs.jvm import JvmEnv, PrivateJvm

GAMES: tuple[str, ...] = (
    "cookingworld", "coin", "twc", "mapreader", "arithmetic", "sorting", "simonsays", "peckingorder",
)
DEFAULT_GAME_PARAMS: dict[str, str] = {
    "cookingworld": "numLocations=3,numIngredients=2,numDistractorItems=2,includeDoors=0,limitInventorySize=0",
    "coin": "numLocations=4,numDistractorItems=2,includeDoors=1,limitInventorySize=0",
    "twc": "numLocations=2,numItemsToPutAway=2,includeDoors=0,limitInventorySize=0",
}
# TWX's seeds per fold (``getSeedsTrain/Dev/Test``), the same for every game; tests check them.
FOLD_SEEDS: dict[str, range] = {"train": range(1000), "dev": range(10000, 11000), "test": range(20000, 21000)}
DEFAULT_SPLIT_SIZES: dict[str, int] = {"train": 1000, "dev": 100, "test": 100}
DEFAULT_MAX_STEPS = 50


class _Jvm(PrivateJvm):
    """A private JVM running TWX's ``PythonInterface`` behind a py4j gateway."""

    def __init__(self, java_opts: Sequence[str]) -> None:
        from textworld_express.constants import BASEPATH, JAR_PATH

        super().__init__("textworld", JAR_PATH, BASEPATH, java_opts)
        self.server = self.gateway.jvm.textworldexpress.runtime.PythonInterface()


class TextWorldEnv(JvmEnv):
    """TextWorldExpress behind the :class:`TextEnv` contract; see the module docstring."""

    name: ClassVar[str] = "textworld"

    def __init__(
        self,
        game: str = "cookingworld",
        game_params: str | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        num_train: int = DEFAULT_SPLIT_SIZES["train"],
        num_dev: int = DEFAULT_SPLIT_SIZES["dev"],
        num_test: int = DEFAULT_SPLIT_SIZES["test"],
        java_opts: Sequence[str] = (),
    ) -> None:
        if game not in GAMES:
            raise EnvError(f"textworld: unknown game {game!r}; valid games are {list(GAMES)}")
        sizes = {"train": int(num_train), "dev": int(num_dev), "test": int(num_test)}
        for split, size in sizes.items():
            if not 1 <= size <= len(FOLD_SEEDS[split]):
                raise EnvError(
                    f"textworld: num_{split} must be between 1 and {len(FOLD_SEEDS[split])} (TWX's {split} fold), got {size}"
                )
        if int(max_steps) < 1:
            raise EnvError(f"textworld: max_steps must be positive, got {max_steps}")
        params = DEFAULT_GAME_PARAMS.get(game, "") if game_params is None else str(game_params)
        super().__init__(
            max_steps=max_steps, game=game, game_params=params, num_train=sizes["train"],
            num_dev=sizes["dev"], num_test=sizes["test"], java_opts=list(java_opts),
        )
        self.game = game
        self.game_params = params
        self._java_opts = tuple(java_opts)
        self._splits = {s: [f"{game}:{seed}" for seed in FOLD_SEEDS[s][: sizes[s]]] for s in SPLITS}
        self._fold_of = {t: s for s, ids in self._splits.items() for t in ids}
        self._jvm: _Jvm | None = None
        self._loaded = False
        self._valid: list[str] = []
        self._gold: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ ids and splits
    def _task_ids(self, split: str) -> list[str]:
        return self._splits[split]

    def is_task_id(self, task_id: str) -> bool:
        return task_id in self._fold_of

    # ------------------------------------------------------------------ the simulator
    def _server(self) -> Any:
        if self._jvm is None:
            self._jvm = _Jvm(self._java_opts)
            self._loaded = False
        if not self._loaded:
            error = self._jvm.server.load(self.game, self.game_params)
            if error:
                raise EnvError(f"textworld: TWX rejected game {self.game!r} with params {self.game_params!r}: {error}")
            self._loaded = True
        return self._jvm.server

    def _generate(self, task_id: str, gold: bool = False) -> dict[str, Any]:
        seed = int(task_id.rpartition(":")[2])
        reply = json.loads(self._server().generateNewGameJSON(seed, self._fold_of[task_id], gold))
        if str(reply.get("observation", "")).startswith("ERROR"):
            raise EnvError(
                f"textworld: TWX could not make {task_id!r} with game_params {self.game_params!r}: {reply['observation']}"
            )
        self._valid = sorted(set(reply["validActions"]))
        return reply

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        reply = self._generate(task_id)
        return str(reply["observation"]), str(self._server().getTaskDescription())

    def _step(self, action: str) -> StepOutcome:
        valid = action in self._valid
        reply = json.loads(self._server().stepJSON(action))
        self._valid = sorted(set(reply["validActions"]))
        return StepOutcome(
            observation=str(reply["observation"]),
            score=min(1.0, max(0.0, float(reply["score"]))),
            done=bool(reply["tasksuccess"]) or bool(reply["taskfailure"]),
            valid=valid,
            success=bool(reply["tasksuccess"]),
            extra={"twx_score_raw": float(reply["scoreRaw"]), "task_failure": bool(reply["taskfailure"])},
        )

    def _admissible(self) -> list[str] | None:
        return list(self._valid)

    def _extra_info(self) -> dict[str, Any]:
        return {"game": self.game}

    # ------------------------------------------------------------------ expert
    def gold_actions(self, task_id: str | None = None) -> list[str]:
        """TWX's gold path for a task (the current one by default)."""
        task_id = self.check_task_id(task_id if task_id is not None else (self.task_id or ""))
        if task_id not in self._gold:
            self._generate(task_id, gold=True)
            self._gold[task_id] = [str(a) for a in self._server().getGoldActionSequence()]
            if self.task_id is not None:  # rebuild the current episode's state
                reply = self._generate(self.task_id)
                for action in self.actions:
                    reply = json.loads(self._server().stepJSON(action))
                self._valid = sorted(set(reply["validActions"]))
        return list(self._gold[task_id])

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        super().close()
        self._loaded = False
