"""``household``: a text re-creation of Situated Instruction Following (SIF) tasks (selfreg.md).

SIF needs Habitat and GPUs; this env keeps what makes it hard — a stale map, a human who moves
things or moves themselves, and vague hints — in plain text.

Decisions:

- **Task ids** are ``<type>-<index>``, e.g. ``pnp-0007``, ``s_obj-0120``, ``s_hum-0042``. Indexes
  0–99 of each type are ``train``, 100–119 ``dev`` and 120–159 ``test`` (300 / 60 / 120 tasks),
  listed interleaved by type (``pnp-0120``, ``s_obj-0120``, ``s_hum-0120``, ``pnp-0121`` …).
- **The world is a function of the task id and the env's knobs only.** ``seed`` is recorded but
  changes nothing, so the prefix of actions taken (with the task id) determines the state exactly:
  the tabular state key ``prefix`` of selfreg.md is then an exact tree.
- **House**: ``rooms`` (default 4–7) rooms drawn from a fixed list, each with ``receptacles``
  (default 1–4) receptacles (furniture names are unique across rooms: "counter", "desk"), and one object on
  about every receptacle. The agent starts in the first room; the human is somewhere.
- **Stale map** (SIF's exploration phase): the first observation lists every room, its receptacles
  and the objects seen on them *earlier*. With ``staleness`` s, every object has, independently with
  probability s, moved since then (to a receptacle of another room); the map still shows it where it
  was. s=0: the map is the truth; s=1: every object is elsewhere. Default 0.2: the map is wrong about
  the task's object in about a fifth of the tasks.
- **Task types**: ``pnp`` put an object on a receptacle (static); ``s_obj`` the same, but right
  after the agent's first action the human moves the object to another room and says where; ``s_hum`` bring an object to the human, who walks to another room (after action 2 or
  3) and says where they are going. If the agent already holds the object, the human leaves it.
- **Hints**: the human names the true room among ``round(hint_vagueness · (rooms − 1))`` decoy
  rooms ("the mug is in the bedroom or the office"); at vagueness 0 the hint is exact and names the
  receptacle too; at 1 it lists every room, which says nothing. Default 0.25: one or two decoys.
- **Observations** end, after every action, with one line of what the agent knows now: its room,
  what it holds, and where the object was last seen (map, its own looks) or may be (the rooms of a
  vague hint it has not ruled out yet), or "you do not know"; once it holds the object, where the
  goal is (the receptacle's room from the map; the human's last known or hinted room). Only what it
  was shown or told, never the truth: a stale map stays wrong in that line. Small models cannot
  carry a map across a long prompt (and the agent's history window drops the first observation).
- **Actions**: ``go to <room>`` (you see its receptacles and whether the human is there),
  ``explore <room>`` (the room you are in: you see the objects on every receptacle), ``pick up
  <object>`` (a guess that fails costs the step), ``put <object> on <receptacle>`` (receptacles of
  this room, while holding), ``give <object> to human`` (while holding, when the human is here),
  ``end task``. Anything else is an invalid action: the observation says why, and the step counts.
  ``max_steps`` is 15 (SIF's call limit).
- **Admissible actions** (``info["admissible_actions"]``, what a chooser picks from) leave out the
  moves that can neither bring the goal nearer nor tell the agent anything new; typed, they still
  work as above. Listed: ``go to`` every other room (never the one you are in); ``explore`` the
  room you are in, once per visit; ``pick up`` the task's object unless you have seen it is not
  here since it last moved (no task needs another object); while holding it, ``put`` it on the
  goal receptacle when that is here, or ``give`` it when the task is the human's and the human is
  here (a put anywhere else undoes the fetch); ``end task``.
- **End**: the episode ends with success as soon as the goal holds (the object on the receptacle,
  or handed to the human); ``end task`` ends it as it stands (a failure: the goal never holds
  before it, since reaching the goal ends the episode), and cannot be undone. Score = success.
- **Expert**: reads the true state (where the object and the human are now) and returns the
  optimal next action: go to the object's room, pick it up, go to the goal room, put/give. From the
  start it needs 4 actions (3 when the goal room is the object's room), plus 1 after a move.
- **Why help timing matters**: with a stale map or a vague hint, a wrong room costs two steps
  (going and exploring), and searching a 6-room house takes most of the 15-step budget; one expert
  action right after the hint (or at the first move in ``pnp`` with a stale map) saves most of it,
  while an expert action spent walking a known route saves nothing. ``end task`` is a trap with no
  way back.
- **Defaults** (``staleness`` 0.2, ``hint_vagueness`` 0.25, 4–7 rooms, 1–4 receptacles) are tuned so
  that the embedded base policy (SmolLM2-135M, ``choose`` mode, greedy) succeeds sometimes and the
  expert always (BENCHMARKS.md, "Self-regulation", household); at 0.5 / 0.5 SmolLM2 solved none.
- **Prompt layout**: ``prompt_layout = "turns"`` asks agents that read it (``ReActAgent``) to show
  the episode as chat turns; it says how to show this env's text, not who is acting.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from agentcritic.envs.base import EnvError, StepOutcome, TextEnv
from agentcritic.envs.household_view import RoleView

TASK_TYPES: tuple[str, ...] = ("pnp", "s_obj", "s_hum")
SPLIT_RANGES: dict[str, range] = {"train": range(0, 100), "dev": range(100, 120), "test": range(120, 160)}

ROOMS: dict[str, tuple[str, ...]] = {
    "kitchen": ("counter", "fridge", "cabinet", "sink"),
    "living room": ("sofa", "coffee table", "tv stand", "bookshelf"),
    "bedroom": ("bed", "nightstand", "dresser", "wardrobe"),
    "bathroom": ("sink counter", "bathtub", "towel rack", "shelf"),
    "office": ("desk", "filing cabinet", "bookcase", "chair"),
    "dining room": ("dining table", "sideboard", "hutch", "bench"),
    "garage": ("workbench", "tool rack", "storage bin", "car trunk"),
    "laundry room": ("washer", "dryer", "laundry basket", "ironing board"),
    "hallway": ("console table", "coat rack", "shoe cabinet", "side table"),
}
OBJECTS: tuple[str, ...] = (
    "mug", "apple", "book", "remote", "towel", "keys", "phone", "plate", "pillow", "laptop",
    "toy car", "candle", "bowl", "glasses", "wallet", "hat", "scarf", "notebook", "spoon", "vase",
    "lamp", "soap", "brush", "cup", "teddy bear", "water bottle", "charger", "pen", "blanket", "plant",
)
MAX_ROOMS = len(ROOMS)


@lru_cache(maxsize=1)
def _role_view() -> RoleView:
    kinds = {room: "room" for room in ROOMS}
    kinds.update({rec: "receptacle" for recs in ROOMS.values() for rec in recs})
    kinds.update({obj: "object" for obj in OBJECTS})
    return RoleView(kinds)


def _rng(*parts: object) -> random.Random:
    text = "\x1f".join(map(str, parts))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def _join_or(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


@dataclass
class World:
    """The true state of one task (what the expert reads) and its scripted event."""

    task_type: str
    rooms: list[str]
    receptacles: dict[str, list[str]]  # room -> receptacle names
    placement: dict[str, str]  # object -> receptacle it is on now
    map_placement: dict[str, str]  # object -> receptacle the (stale) map shows
    target: str  # the object the task is about
    goal: str  # receptacle (pnp, s_obj) or "human" (s_hum)
    human_room: str
    agent_room: str
    event_step: int | None  # after this many actions the human acts (s_obj, s_hum)
    event_to: str | None  # receptacle (s_obj) or room (s_hum) of the event
    hint_rooms: list[str] = field(default_factory=list)

    def room_of(self, receptacle: str) -> str:
        return next(r for r, recs in self.receptacles.items() if receptacle in recs)


def generate_world(
    task_id: str,
    staleness: float,
    hint_vagueness: float,
    rooms: tuple[int, int],
    receptacles: tuple[int, int],
) -> World:
    """Build the world of ``task_id`` for these knobs; the same inputs always give the same world."""
    task_type, _, index = task_id.partition("-")
    rng = _rng("household", task_id)
    n_rooms = rng.randint(*rooms)
    room_names = rng.sample(sorted(ROOMS), n_rooms)
    recs = {}
    for room in room_names:
        k = rng.randint(*receptacles)
        recs[room] = list(rng.sample(ROOMS[room], k))
    all_recs = [r for room in room_names for r in recs[room]]
    objects = rng.sample(OBJECTS, min(len(OBJECTS), len(all_recs)))
    rec_of_room = {r: room for room in room_names for r in recs[room]}
    map_placement = {obj: rng.choice(all_recs) for obj in objects}
    # Staleness: each object has moved since the map was drawn, to a receptacle of another room.
    # One draw per object, in a fixed order, whatever the knob: raising staleness only adds moves.
    placement = {}
    for obj in objects:
        u, other = rng.random(), rng.random()
        old_room = rec_of_room[map_placement[obj]]
        if u < staleness:
            choices = [r for r in all_recs if rec_of_room[r] != old_room]
            placement[obj] = choices[int(other * len(choices))]
        else:
            placement[obj] = map_placement[obj]
    agent_room = room_names[0]
    # The target: an object that is not in the starting room, so that fetching it takes moves.
    candidates = [o for o in objects if rec_of_room[placement[o]] != agent_room] or objects
    target = rng.choice(candidates)
    target_room = rec_of_room[placement[target]]
    # The human starts away from the object, so that fetching and handing over take separate moves.
    human_room = rng.choice([r for r in room_names if r != target_room])
    event_step = event_to = None
    if task_type == "s_hum":
        goal = "human"
        event_step = rng.choice((2, 3))
        choices = [r for r in room_names if r not in (human_room, target_room)] or [
            r for r in room_names if r != human_room
        ]
        event_to = rng.choice(choices)
    else:
        goal_choices = [r for r in all_recs if rec_of_room[r] != target_room]
        goal = rng.choice(goal_choices)
        if task_type == "s_obj":
            event_step = 1  # before anyone can reach the object: the move always matters
            choices = [r for r in all_recs if rec_of_room[r] not in (target_room, agent_room)] or [
                r for r in all_recs if rec_of_room[r] != target_room
            ]
            event_to = rng.choice(choices)
    world = World(task_type, room_names, recs, placement, map_placement, target, goal, human_room,
                  agent_room, event_step, event_to)
    if event_to is not None:
        true_room = event_to if task_type == "s_hum" else rec_of_room[event_to]
        others = [r for r in room_names if r != true_room]
        decoys = rng.sample(others, round(hint_vagueness * (n_rooms - 1)))
        # The order is drawn too, so the true room is not always first.
        world.hint_rooms = sorted([true_room, *decoys], key=lambda r: rng.random())
    return world


class HouseholdEnv(TextEnv):
    """Fetch-and-deliver tasks in a generated house with a stale map; see the module docstring."""

    name = "household"
    # Agents that read it (ReActAgent) show the episode as chat turns: see "Prompt layout" above.
    prompt_layout = "turns"

    @classmethod
    def helper_view(cls, state_text: str) -> str:
        """The instruction, last action and last observation, rooms and things named by role
        (:mod:`agentcritic.envs.household_view`)."""
        return _role_view()(state_text)

    def __init__(
        self,
        max_steps: int = 15,
        staleness: float = 0.2,
        hint_vagueness: float = 0.25,
        rooms: tuple[int, int] | list[int] = (4, 7),
        receptacles: tuple[int, int] | list[int] = (1, 4),
    ) -> None:
        rooms, receptacles = tuple(int(x) for x in rooms), tuple(int(x) for x in receptacles)
        if not 0.0 <= staleness <= 1.0:
            raise EnvError(f"household: staleness must lie in [0, 1], got {staleness}")
        if not 0.0 <= hint_vagueness <= 1.0:
            raise EnvError(f"household: hint_vagueness must lie in [0, 1], got {hint_vagueness}")
        if len(rooms) != 2 or not 2 <= rooms[0] <= rooms[1] <= MAX_ROOMS:
            raise EnvError(f"household: rooms must be (min, max) with 2 <= min <= max <= {MAX_ROOMS}, got {rooms}")
        if len(receptacles) != 2 or not 1 <= receptacles[0] <= receptacles[1] <= 4:
            raise EnvError(f"household: receptacles must be (min, max) with 1 <= min <= max <= 4, got {receptacles}")
        super().__init__(max_steps=max_steps, staleness=float(staleness), hint_vagueness=float(hint_vagueness),
                         rooms=list(rooms), receptacles=list(receptacles))
        self.staleness, self.hint_vagueness = float(staleness), float(hint_vagueness)
        self.rooms_range, self.receptacles_range = rooms, receptacles
        self.world: World | None = None
        self.room = ""
        self.holding: str | None = None
        self.belief: dict[str, str] = {}  # object -> room the agent thinks it is in
        self.human_known: str | None = None  # room the agent last saw or heard the human in
        # Rooms a vague hint named that the agent has not yet ruled out (target; human).
        self.target_hinted: list[str] = []
        self.human_hinted: list[str] = []
        # Rooms where the agent has seen that the target is not (since it last moved), and whether
        # the room it stands in has been explored since it came in: repeating either is useless.
        self.target_absent: set[str] = set()
        self.explored_here = False

    # ----------------------------------------------------------------- hooks
    def _task_ids(self, split: str) -> list[str]:
        # interleaved by type, so the first N tasks of a split (``--limit N``) mix all three
        return [f"{t}-{i:04d}" for i in SPLIT_RANGES[split] for t in TASK_TYPES]

    def is_task_id(self, task_id: str) -> bool:
        m = re.fullmatch(r"(pnp|s_obj|s_hum)-(\d{4})", task_id)
        return bool(m) and int(m.group(2)) < SPLIT_RANGES["test"].stop

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        w = generate_world(task_id, self.staleness, self.hint_vagueness, self.rooms_range, self.receptacles_range)
        self.world = w
        self.room = w.agent_room
        self.holding = None
        self.belief = {obj: w.room_of(rec) for obj, rec in w.map_placement.items()}
        self.human_known = w.human_room
        self.target_hinted, self.human_hinted = [], []
        self.target_absent, self.explored_here = set(), False
        if w.goal == "human":
            instruction = f"Bring the {w.target} to the human."
        else:
            instruction = f"Put the {w.target} on the {w.goal}."
        lines = ["Map of the house from your earlier exploration (things may have moved since):"]
        for room in w.rooms:
            parts = []
            for rec in w.receptacles[room]:
                objs = sorted(o for o, r in w.map_placement.items() if r == rec)
                parts.append(f"{rec} ({', '.join(objs) if objs else 'empty'})")
            lines.append(f"- {room}: " + "; ".join(parts))
        lines.append(self._notes())
        return "\n".join(lines), instruction

    def _step(self, action: str) -> StepOutcome:
        w = self.world
        assert w is not None
        text = re.sub(r"\s+", " ", action.strip().lower()).rstrip(".")
        obs, valid, done, success = self._apply(text)
        if not done and w.event_step is not None and len(self.actions) == w.event_step:
            obs += "\n" + self._event()
        if not done:
            obs += "\n" + self._notes()
        score = 1.0 if success else 0.0
        return StepOutcome(obs, score=score, done=done, valid=valid, success=success)

    def _admissible(self) -> list[str]:
        w = self.world
        assert w is not None
        out = [f"go to {r}" for r in w.rooms if r != self.room]
        if not self.explored_here:
            out.append(f"explore {self.room}")
        # Only moves that can bring the goal nearer or tell something new: no task needs another
        # object, and a put or give anywhere but the goal undoes the fetch.
        if self.holding is None:
            if self.room not in self.target_absent:
                out.append(f"pick up {w.target}")
        elif self.holding != w.target:  # only by a typed action: put it down
            out += [f"put {self.holding} on {rec}" for rec in w.receptacles[self.room]]
        elif w.goal == "human":
            if w.human_room == self.room:
                out.append(f"give {self.holding} to human")
        elif w.goal in w.receptacles[self.room]:
            out.append(f"put {self.holding} on {w.goal}")
        out.append("end task")
        return out

    def _expert(self) -> str | None:
        w = self.world
        assert w is not None
        if self.holding == w.target:
            goal_room = w.human_room if w.goal == "human" else w.room_of(w.goal)
            if self.room != goal_room:
                return f"go to {goal_room}"
            return f"give {w.target} to human" if w.goal == "human" else f"put {w.target} on {w.goal}"
        if self.holding is not None:
            # Holding something else (the base policy's doing): put it down here first.
            return f"put {self.holding} on {w.receptacles[self.room][0]}"
        obj_room = w.room_of(w.placement[w.target])
        if self.room != obj_room:
            return f"go to {obj_room}"
        return f"pick up {w.target}"

    def _extra_info(self) -> dict[str, Any]:
        if self.world is None:
            return {}
        return {"room": self.room, "holding": self.holding, "task_type": self.world.task_type}

    # ----------------------------------------------------------------- dynamics
    def _apply(self, text: str) -> tuple[str, bool, bool, bool]:
        """(observation, valid, done, success) of one action on the true state."""
        w = self.world
        assert w is not None
        if text == "end task":
            return "You end the task. The goal was not reached.", True, True, False
        m = re.fullmatch(r"(go to|explore) (?:the )?(.+)", text)
        if m:
            verb, room = m.groups()
            if room not in w.rooms:
                return self._invalid(f"there is no room called '{room}'; rooms: {', '.join(w.rooms)}")
            if verb == "go to":
                if room == self.room:
                    return self._invalid(f"you are already in the {room}")
                self.room = room
                self.explored_here = False
                return self._look(), True, False, False
            if room != self.room:
                return self._invalid(f"you can only explore the room you are in (the {self.room}); go there first")
            return self._explore(), True, False, False
        m = re.fullmatch(r"pick up (?:the )?(.+)", text)
        if m:
            return self._pick(m.group(1))
        m = re.fullmatch(r"put (?:the )?(.+?) (?:on|in) (?:the )?(.+)", text)
        if m:
            return self._put(*m.groups())
        m = re.fullmatch(r"give (?:the )?(.+?) to (?:the )?human", text)
        if m:
            return self._give(m.group(1))
        return self._invalid(
            f"could not read {text!r}; actions are 'go to <room>', 'explore <room>', 'pick up <object>', "
            "'put <object> on <receptacle>', 'give <object> to human', 'end task'"
        )

    def _invalid(self, why: str) -> tuple[str, bool, bool, bool]:
        return f"Invalid action: {why}.", False, False, False

    def _look(self) -> str:
        w = self.world
        assert w is not None
        human = "The human is here." if w.human_room == self.room else "The human is not here."
        if w.human_room == self.room:
            self.human_known = self.room
            self.human_hinted = []
        else:
            if self.human_known == self.room:
                self.human_known = None
            self._rule_out(self.human_hinted)
        return f"You enter the {self.room}. You see: {', '.join(w.receptacles[self.room])}. {human}"

    def _explore(self) -> str:
        w = self.world
        assert w is not None
        parts = []
        seen = set()
        for rec in w.receptacles[self.room]:
            objs = sorted(o for o, r in w.placement.items() if r == rec)
            seen.update(objs)
            parts.append(f"on the {rec}: {', '.join(objs) if objs else 'nothing'}")
        for obj in list(self.belief):
            if self.belief[obj] == self.room and obj not in seen:
                del self.belief[obj]
        for obj in seen:
            self.belief[obj] = self.room
        self.explored_here = True
        if w.target in seen:
            self.target_hinted = []
        elif self.holding != w.target:
            self._rule_out(self.target_hinted)
            self.target_absent.add(self.room)
        return f"You look around the {self.room}: " + "; ".join(parts) + "."

    def _pick(self, obj: str) -> tuple[str, bool, bool, bool]:
        w = self.world
        assert w is not None
        if self.holding is not None:
            return self._invalid(f"you are already holding the {self.holding}; put it down first")
        if obj not in w.placement:
            return f"There is no {obj} here.", True, False, False
        if w.room_of(w.placement[obj]) != self.room:
            if self.belief.get(obj) == self.room:  # a guess elsewhere says nothing of the other rooms
                del self.belief[obj]
            if obj == w.target:
                self._rule_out(self.target_hinted)
                self.target_absent.add(self.room)
            return f"There is no {obj} here.", True, False, False
        rec = w.placement.pop(obj)
        self.belief.pop(obj, None)
        if obj == w.target:
            self.target_hinted = []
        self.holding = obj
        return f"You pick up the {obj} from the {rec}.", True, False, False

    def _put(self, obj: str, rec: str) -> tuple[str, bool, bool, bool]:
        w = self.world
        assert w is not None
        if self.holding != obj:
            held = f"the {self.holding}" if self.holding else "nothing"
            return self._invalid(f"you are not holding the {obj} (you hold {held})")
        if rec not in w.receptacles[self.room]:
            return self._invalid(f"there is no {rec} in the {self.room}; here: {', '.join(w.receptacles[self.room])}")
        w.placement[obj] = rec
        self.belief[obj] = self.room
        self.target_absent.discard(self.room)
        self.holding = None
        if obj == w.target and rec == w.goal:
            return f"You put the {obj} on the {rec}. Task complete.", True, True, True
        return f"You put the {obj} on the {rec}.", True, False, False

    def _give(self, obj: str) -> tuple[str, bool, bool, bool]:
        w = self.world
        assert w is not None
        if self.holding != obj:
            held = f"the {self.holding}" if self.holding else "nothing"
            return self._invalid(f"you are not holding the {obj} (you hold {held})")
        if w.human_room != self.room:
            return self._invalid(f"the human is not in the {self.room}")
        if w.goal == "human" and obj == w.target:
            self.holding = None
            return f"You give the {obj} to the human. Task complete.", True, True, True
        return f"The human does not need the {obj}.", True, False, False

    def _rule_out(self, hinted: list[str]) -> None:
        """The agent has looked here: a hinted room it has checked is no longer a candidate."""
        if self.room in hinted:
            hinted.remove(self.room)

    def _notes(self) -> str:
        """What the agent knows now, restated after every action (module docstring, "Observations").

        Only what the agent has been told or has seen: the map, its own looks, the human's words.
        Small models cannot carry the map across a long prompt; a reader of this line can.
        """
        w = self.world
        assert w is not None
        held = f"the {self.holding}" if self.holding else "nothing"
        parts = [f"You are in the {self.room} and hold {held}."]
        if self.holding != w.target:
            # Until the agent holds the object, only where to find it is news; the goal comes after.
            if self.target_hinted:
                parts.append(f"The {w.target} may be in {_join_or([f'the {r}' for r in self.target_hinted])}.")
            elif w.target in self.belief:
                parts.append(f"The {w.target} was last seen in the {self.belief[w.target]}.")
            else:
                parts.append(f"You do not know where the {w.target} is.")
        elif w.goal == "human":
            if self.human_known is not None:
                parts.append(f"The human is in the {self.human_known}.")
            elif self.human_hinted:
                parts.append(f"The human may be in {_join_or([f'the {r}' for r in self.human_hinted])}.")
            else:
                parts.append("You do not know where the human is.")
        else:
            parts.append(f"The {w.goal} is in the {w.room_of(w.goal)}.")
        return " ".join(parts)

    def _event(self) -> str:
        """The human acts (s_obj: moves the object; s_hum: walks away) and says where, as vaguely as set."""
        w = self.world
        assert w is not None and w.event_to is not None
        where = _join_or([f"the {r}" for r in w.hint_rooms])
        if w.task_type == "s_hum":
            if w.human_room == self.room:
                self.human_known = None
            w.human_room = w.event_to
            self.human_known = w.event_to if len(w.hint_rooms) == 1 else None
            self.human_hinted = list(w.hint_rooms) if len(w.hint_rooms) > 1 else []
            return f"The human says: \"I'm heading to {where}.\" The human leaves."
        if self.holding == w.target:
            return f"The human says: \"Oh, you have the {w.target} already.\""
        w.placement[w.target] = w.event_to
        self.target_absent, self.explored_here = set(), False  # it moved: every room is open again
        if len(w.hint_rooms) == 1:
            self.belief[w.target] = w.hint_rooms[0]
            return f"The human says: \"I moved the {w.target} to the {w.event_to}.\""
        self.belief.pop(w.target, None)
        self.target_hinted = list(w.hint_rooms)
        return f"The human says: \"I moved the {w.target}; it is in {where} now.\""
