"""``scienceworld``: the ScienceWorld simulator (Wang et al., 2022; PyPI ``scienceworld``).

ScienceWorld is a Scala program; this adapter drives its ``PythonInterface`` over py4j, the way
the package's own ``ScienceWorldEnv`` does, but with its own JVM launch (see *Determinism*) and
without the per-step enumeration of every valid action that the package's ``step()`` performs
(0.1–1.5 s a step, measured; this adapter never calls it).

Decisions:

- **Task ids** are ``"<task-name>:<variation>"`` (``"boil:21"``) over ScienceWorld's 30 tasks, or
  the subset given as ``tasks=[...]`` (an unknown name raises :class:`EnvError` listing the valid
  ones). **Splits** are ScienceWorld's own variation splits (``get_variations_train/dev/test``,
  the simulator's 50/25/25 cut of each task's variations): ``train``, ``dev`` (the papers'
  "seen" set) and ``test`` ("unseen"). The split arithmetic is reproduced here from the table of
  variation counts (:data:`MAX_VARIATIONS`, checked against the JVM by the tests), so listing
  ids is instant and needs no JVM. Within a split the ids are **interleaved across tasks** (the
  first variation of every task, then the second of every task, ...), so any prefix of a split —
  "the first 100 test ids" — covers all task types evenly.
- **JVM.** One private JVM per env instance, started on the first ``reset`` and ended by
  :meth:`close` (also on garbage collection and when Python exits); an env that was never reset
  costs nothing. Pickling rebuilds the env from its constructor arguments and replays the
  actions, in a JVM of its own.
- **Determinism.** ScienceWorld as shipped is *not* deterministic, for two reasons, both fixed
  here so that an episode is a function of (task, variation, actions) alone — across runs,
  processes, ``restore`` and pickling (checked by the tests):
  (1) objects live in hash sets keyed by identity hash codes, so their iteration order — the
  order in which they tick and are listed — changes from run to run (measured: ``boil:22``'s
  gold path ends at 78 or 100 on reruns). The JVM runs with ``-XX:+UnlockExperimentalVMOptions
  -XX:hashCode=2`` (constant identity hash codes; about 20% more time per step);
  ``deterministic=False`` drops the flag.
  (2) the simulator's unique-name chooser (used by every object listing, including the
  package's own ``get_possible_objects``) draws from the global ``scala.util.Random`` that also
  drives the simulation, so merely *looking* at the candidate list changes the episode
  (measured: different bees pollinate different flowers in ``grow-fruit``). Object listings run
  with that generator swapped for a fixed-seed one (:meth:`_Jvm.isolated_random`), which also
  makes an object's name depend on the state alone.
- **Episode start** is ScienceWorld's own: load the variation, then ``look around`` (which does
  not advance the simulation clock); its answer is the first observation and is not a step.
  The instruction is the task description. ``seed`` changes nothing: a variation fixes the world.
- **Score and reward.** ScienceWorld scores 0–100 and answers -100 to a fatal mistake (focusing
  on the wrong object, ...). As in ARMAP, the episode's score is the **maximum** score seen so
  far / 100; a negative score counts as 0 for that maximum and ends the episode. ``success``:
  the score reached 100. The step's ``info["sw_score"]`` carries the simulator's signed score.
- **Step limits** (``max_steps=None``): per task, :data:`STEP_LIMITS` = twice the longest gold
  path seen in up to 14 variations of the task (:data:`LONGEST_GOLD`) plus 10, at least 30 and
  at most 200 (42 for ``find-animal``, 200 for ``boil``). The cap binds for the
  inclined-plane tasks, whose gold paths ``look at`` the plane once a tick until the block
  arrives (up to 744 actions) where an agent would ``wait``; their longest gold paths do not fit.
  An int ``max_steps`` overrides the table for every task.
- **Invalid actions**: the parser's refusals — "No known action matches that input.", the
  "Unknown action." answer to an empty parse, and the ``ERROR: ...`` answers to a bad reply to a
  disambiguation question — are ``valid=False``; the state is unchanged and the step counts.
  An **ambiguous** command ("Ambiguous request: Please enter the number ...") is valid: the
  simulator waits for a number, and the candidate list is then exactly those numbers (the gold
  paths use this too).
- **Candidate list** (``choose`` mode). The full valid-action list has hundreds to thousands of
  entries (median 1,100, up to 8,300) and takes 0.1–1.5 s to enumerate, mostly nonsense
  ("connect air to painting"). Instead the candidates are ScienceWorld's action templates
  filled with the reachable objects (not those inside closed containers) and the inventory,
  under the simulator's own unique names for them (three name tables and the inventory's
  contents: four JVM calls), and the objects' classes decide which templates make sense:
  ``go to`` the rooms in view,
  ``open``/``close`` doors and openable containers, ``activate``/``deactivate`` devices,
  ``pick up`` portable things, ``focus on``/``look at`` things, ``read`` documents, ``mix``
  vessels; held items add ``use <tool> on X``, ``move <it> to <receptacle>``, ``pour <vessel>
  in <vessel>``, ``put down``; things around add ``move X to <receptacle>`` and ``pour``;
  ``connect`` pairs each wire end with the other terminals; plus ``look around``,
  ``inventory``, ``wait1``, ``wait``. Held items are named ``"<name> in inventory"`` (the gold
  paths' form). Each group lists its likelier objects first (the task's substances, creatures
  and vessels before food and furniture; two-object groups pair the best-ranked objects first).
  The list is deduplicated and capped at ``max_candidates`` (default 150): the basic actions
  always stay, then the largest groups are trimmed first, so no kind of action disappears. The
  gold action is never consulted. Measured along the gold paths of the first two test
  variations of every task (3,219 steps): the gold action's own text is in the list at 76% of
  the steps, and an action the simulator reads as the same command (same template, same
  objects: ``examine X`` = ``look at X``, ``door to kitchen`` = ``kitchen door``) at 97% (95%
  with 100 candidates, 97% with 200) — the ceiling for a chooser; most of the rest are gold
  steps that re-pick up what is already held. Of the candidates offered along random
  walks, 98% are commands the parser reads as one known action (the rest mostly carry names
  like "paint on wood cup" that the simulator's own name chooser produces but its parser finds
  ambiguous). Building the list costs 3–7 ms (median; JVM calls included).
- **Expert**: ScienceWorld's gold action sequence for the variation (generated on the first
  :meth:`expert_action` call for a task, 0.1–20 s, then kept for the env's life; the state is
  rebuilt by replaying the actions). It is followed step by step while the agent's actions are
  exactly its prefix; after any deviation it returns ``None`` (ScienceWorld has no planner for
  arbitrary states, and its clock makes an off-path state differ in ways a replan cannot see).
  Measured: gold paths reach 100 in 475 of the 476 variations run (through this env, the first
  six test variations of every task, 180/180; and a spread sample of 357 over all three
  splits); ``freeze:19`` (dev) ends at 82. Four sampled inclined-plane-friction gold paths
  (204–744 actions) are longer than the 200-step cap, so the expert is cut off there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from agentcritic.envs.base import SPLITS, EnvError, StepOutcome
from agentcritic.envs.jvm import JvmEnv, PrivateJvm

# Variations per task in scienceworld 1.2.x (``get_max_variations``); tests check it against the JVM.
MAX_VARIATIONS: dict[str, int] = {
    "boil": 30,
    "change-the-state-of-matter-of": 30,
    "chemistry-mix": 32,
    "chemistry-mix-paint-secondary-color": 36,
    "chemistry-mix-paint-tertiary-color": 36,
    "find-animal": 300,
    "find-living-thing": 300,
    "find-non-living-thing": 300,
    "find-plant": 300,
    "freeze": 30,
    "grow-fruit": 126,
    "grow-plant": 126,
    "identify-life-stages-1": 14,
    "identify-life-stages-2": 10,
    "inclined-plane-determine-angle": 168,
    "inclined-plane-friction-named-surfaces": 1386,
    "inclined-plane-friction-unnamed-surfaces": 162,
    "lifespan-longest-lived": 125,
    "lifespan-longest-lived-then-shortest-lived": 125,
    "lifespan-shortest-lived": 125,
    "measure-melting-point-known-substance": 436,
    "measure-melting-point-unknown-substance": 300,
    "melt": 30,
    "mendelian-genetics-known-plant": 120,
    "mendelian-genetics-unknown-plant": 480,
    "power-component": 20,
    "power-component-renewable-vs-nonrenewable-energy": 20,
    "test-conductivity": 900,
    "test-conductivity-of-unknown-substances": 600,
    "use-thermometer": 540,
}
TASK_NAMES: tuple[str, ...] = tuple(MAX_VARIATIONS)

# Longest gold path (actions after the opening "look around") seen in up to 14 variations per task
# (4 spread over each split, plus the first two test variations), made with this adapter's JVM.
LONGEST_GOLD: dict[str, int] = {
    "boil": 180,
    "change-the-state-of-matter-of": 132,
    "chemistry-mix": 56,
    "chemistry-mix-paint-secondary-color": 33,
    "chemistry-mix-paint-tertiary-color": 41,
    "find-animal": 16,
    "find-living-thing": 16,
    "find-non-living-thing": 11,
    "find-plant": 16,
    "freeze": 143,
    "grow-fruit": 105,
    "grow-plant": 77,
    "identify-life-stages-1": 42,
    "identify-life-stages-2": 17,
    "inclined-plane-determine-angle": 170,
    "inclined-plane-friction-named-surfaces": 744,
    "inclined-plane-friction-unnamed-surfaces": 227,
    "lifespan-longest-lived": 8,
    "lifespan-longest-lived-then-shortest-lived": 9,
    "lifespan-shortest-lived": 8,
    "measure-melting-point-known-substance": 74,
    "measure-melting-point-unknown-substance": 96,
    "melt": 150,
    "mendelian-genetics-known-plant": 150,
    "mendelian-genetics-unknown-plant": 149,
    "power-component": 15,
    "power-component-renewable-vs-nonrenewable-energy": 30,
    "test-conductivity": 46,
    "test-conductivity-of-unknown-substances": 37,
    "use-thermometer": 24,
}
MIN_STEP_LIMIT = 30
MAX_STEP_LIMIT = 200


def _step_limit(longest_gold: int) -> int:
    return min(MAX_STEP_LIMIT, max(MIN_STEP_LIMIT, 2 * longest_gold + 10))


STEP_LIMITS: dict[str, int] = {task: _step_limit(LONGEST_GOLD[task]) for task in TASK_NAMES}
DEFAULT_MAX_CANDIDATES = 150
SIMPLIFICATIONS: tuple[str, ...] = (
    "easy", "teleportAction", "selfWateringFlowerPots", "openContainers", "openDoors", "noElectricalAction",
)
JVM_DETERMINISM_OPTS: tuple[str, ...] = ("-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2")

_REFUSALS = ("No known action matches that input", "Unknown action.", "ERROR:")
_AMBIGUOUS = "Ambiguous request"
_AMBIGUOUS_CHOICE = re.compile(r"^(\d+):\t", re.MULTILINE)
_OBJECT_ID = re.compile(r"ObjectID \((\d+),")
_BASIC_ACTIONS = ("look around", "inventory", "wait1", "wait")


def variation_splits(max_variations: int) -> tuple[list[int], list[int], list[int]]:
    """ScienceWorld's train/dev/test cut of ``range(max_variations)`` (``PythonInterface.getSets``)."""
    n = max_variations
    small = {0: ([], [], []), 1: ([0], [], [0]), 2: ([0], [], [1]), 3: ([0], [1], [2]), 4: ([0, 1], [2], [3])}
    if n in small:
        train, dev, test = small[n]
        return list(train), list(dev), list(test)
    size = n // 4
    groups = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    test = groups[3] + (groups[4] if len(groups) > 4 else [])
    return groups[0] + groups[1], groups[2], test


def _is_refusal(observation: str) -> bool:
    return observation.lstrip().startswith(_REFUSALS)


# ------------------------------------------------------------------------ object classes
# Class names are ScienceWorld's (``scienceworld.objects.`` stripped); they decide which action
# templates are offered for an object in the candidate list.
_ROOMS = frozenset({"location.Room", "location.Outside"})
_DOORS = frozenset({"portal.Door"})
_IGNORED = frozenset(
    {"agent.Agent", "agent.InventoryContainer", "location.Universe", "location.Location",
     "substance.Air", "portal.LiquidDrain", "portal.Portal", "containers.Sewer"}
)
_TERMINALS = frozenset({"electricalcomponent.Anode", "electricalcomponent.Cathode", "electricalcomponent.Terminal"})
_OPENABLE = frozenset(
    {"containers.GlassJar", "containers.furniture.BeeHive", "containers.furniture.Closet",
     "containers.furniture.Cupboard", "containers.furniture.Drawer", "devices.BlastFurnace",
     "devices.Freezer", "devices.Fridge", "devices.Oven", "devices.Toilet", "devices.UltraColdFreezer"}
)
_APPLIANCES = frozenset(
    {"devices.Bathtub", "devices.BlastFurnace", "devices.Freezer", "devices.Fridge", "devices.HotPlate",
     "devices.Oven", "devices.Sink", "devices.Stove", "devices.Toilet", "devices.UltraColdFreezer",
     "devices.HeatSource", "devices.CoolingSource"}
)
_SWITCHABLE = _APPLIANCES | frozenset(
    {"devices.StopWatch", "electricalcomponent.GasGenerator", "electricalcomponent.NuclearGenerator",
     "electricalcomponent.Switch"}
)
_TOOLS = frozenset({"devices.Thermometer", "devices.Lighter", "devices.Shovel", "devices.Axe"})
_SEATS = frozenset(
    {"containers.furniture.Bed", "containers.furniture.Chair", "containers.furniture.Couch",
     "containers.furniture.Mattress", "containers.furniture.Pillow", "containers.furniture.Sittable"}
)
_RECEPTACLE_EXTRA = frozenset({"taskitems.AnswerBox", "environmentoutside.FirePit", "environmentoutside.Hole"})


def _is_furniture(cls: str) -> bool:
    return cls.startswith("containers.furniture.")


def _is_vessel(cls: str) -> bool:
    return cls.startswith("containers.") and not _is_furniture(cls) and cls not in {"containers.Sewer", "containers.BookShelf"}


def _is_fixture(cls: str) -> bool:
    """Part of the house: rooms, doors, furniture, appliances, the outdoors, pictures."""
    return (
        cls in _ROOMS or cls in _DOORS or cls in _IGNORED or cls in _TERMINALS or cls in _APPLIANCES
        or (_is_furniture(cls) and cls not in _SEATS) or cls.startswith("environmentoutside.")
        or cls in {"containers.BookShelf", "misc.Picture", "misc.InclinedPlane", "taskitems.AnswerBox"}
    )


def _is_portable(cls: str) -> bool:
    return not _is_fixture(cls)


def _is_focusable(cls: str) -> bool:
    return _is_portable(cls) or cls == "misc.InclinedPlane"


def _is_receptacle(cls: str) -> bool:
    return (
        _is_vessel(cls) or cls in _APPLIANCES or cls in _RECEPTACLE_EXTRA
        or (_is_furniture(cls) and cls not in _SEATS)
    )


@dataclass(frozen=True)
class Thing:
    """An object in view: the simulator's unique name for it, its class, its id, whether held."""

    name: str
    cls: str
    uuid: int
    held: bool = False


@dataclass(frozen=True)
class Candidate:
    """A candidate action with the template and object ids it was built from."""

    text: str
    template: str
    uuids: tuple[int, ...] = ()


def _rank(t: Thing) -> int:
    """How likely a thing is to matter to a task: what the tasks are about first, food and décor last."""
    cls = t.cls
    if cls.startswith("substance.food."):
        return 2
    if cls.startswith(("substance.", "livingthing.", "taskitems.Unknown")) or cls == "misc.InclinedPlane":
        return 0
    if _is_vessel(cls) or cls.startswith(("devices.", "document.", "electricalcomponent.")):
        return 1
    return 2


def _receptacle_rank(t: Thing) -> int:
    """Where things are usually moved: appliances, inclined planes and answer boxes, then vessels, then furniture."""
    if t.cls in _APPLIANCES or t.cls in _RECEPTACLE_EXTRA or t.cls == "misc.InclinedPlane":
        return 0
    return 1 if _is_vessel(t.cls) else 2


def _source_key(t: Thing) -> tuple[bool, int, str]:
    """Which things around are moved first: loose vessels and blocks, then substances, then the rest."""
    if _is_pour_source(t.cls) or t.cls.endswith("Block"):
        kind = 0
    else:
        kind = 1 if t.cls.startswith(("substance.", "taskitems.")) else 2
    return (" in " in t.name or " on " in t.name, kind, t.name)


def _diagonal(
    pattern: str, template: str, first: Sequence[Thing], second: Sequence[Thing]
) -> list[tuple[str, str, tuple[int, ...]]]:
    """All pairs of two ranked lists, best pairs first (by the sum of the two ranks)."""
    pairs = [(i + j, i, a, b) for i, a in enumerate(first) for j, b in enumerate(second) if a.uuid != b.uuid]
    pairs.sort(key=lambda p: (p[0], p[1]))
    return [(pattern.format(a.name, b.name), template, (a.uuid, b.uuid)) for _, _, a, b in pairs]


def _is_pour_source(cls: str) -> bool:
    return _is_vessel(cls) and "FlowerPot" not in cls  # one pours into flower pots, not out of them


def build_candidates(things: Sequence[Thing], room: str, cap: int = DEFAULT_MAX_CANDIDATES) -> list[Candidate]:
    """The candidate actions for a state, from the objects in view (see the module docstring).

    Groups come in a fixed order and each lists its most relevant objects first (:func:`_rank`),
    so that :func:`_cap` keeps the likelier actions of every group.
    """
    things = sorted((t for t in things if t.cls not in _IGNORED), key=lambda t: (_rank(t), t.name))
    held = [t for t in things if t.held]
    around = [t for t in things if not t.held]
    receptacles = sorted(
        (t for t in things if _is_receptacle(t.cls) or t.cls == "misc.InclinedPlane"),
        key=lambda t: (_receptacle_rank(t), t.held, t.name),
    )
    pour_targets = [t for t in receptacles if _is_vessel(t.cls)]
    # what a tool is used on: the task's substances and creatures first, fixtures last
    targets = [t for t in things if _is_focusable(t.cls)] + [t for t in receptacles if not _is_focusable(t.cls)]
    groups: list[list[Candidate]] = []

    def group(items: Iterable[tuple[str, str, tuple[int, ...]]]) -> None:
        groups.append([Candidate(text, template, uuids) for text, template, uuids in items])

    def singles(verb: str, among: Iterable[Thing]) -> None:
        group((f"{verb} {t.name}", verb, (t.uuid,)) for t in among)

    group((a, a, ()) for a in _BASIC_ACTIONS)
    group((f"go to {t.name}", "go", (t.uuid,)) for t in around if t.cls in _ROOMS and t.name != room)
    singles("open", (t for t in around if t.cls in _DOORS))
    # things held
    singles("focus on", (t for t in held if _is_focusable(t.cls)))
    singles("look at", held)
    group(
        (f"{verb} {t.name}", verb, (t.uuid,))
        for t in held for verb, ok in (("read", t.cls.startswith("document.")), ("activate", t.cls in _SWITCHABLE),
                                       ("deactivate", t.cls in _SWITCHABLE), ("mix", _is_vessel(t.cls)))
        if ok
    )
    group(
        (f"use {tool.name} on {t.name}", "use", (tool.uuid, t.uuid))
        for tool in held if tool.cls in _TOOLS for t in targets if t.uuid != tool.uuid
    )
    group(_diagonal("move {} to {}", "move", sorted(held, key=_source_key), receptacles))
    group(
        (f"pour {h.name} in {r.name}", "pour", (h.uuid, r.uuid))
        for h in held if _is_pour_source(h.cls) for r in pour_targets if r.uuid != h.uuid
    )
    singles("put down", (t for t in held if " in inventory" in t.name))
    # things around
    singles("pick up", (t for t in around if _is_portable(t.cls)))
    singles("open", (t for t in around if t.cls in _OPENABLE))
    group(
        (f"{verb} {t.name}", verb, (t.uuid,))
        for t in around if t.cls in _SWITCHABLE for verb in ("activate", "deactivate")
    )
    singles("focus on", (t for t in around if _is_focusable(t.cls)))
    singles("look at", (t for t in around if _is_focusable(t.cls)))
    singles("read", (t for t in around if t.cls.startswith("document.")))
    singles("mix", (t for t in around if _is_vessel(t.cls)))
    # two things around
    group(_diagonal(
        "move {} to {}", "move", sorted((t for t in around if _is_portable(t.cls)), key=_source_key),
        receptacles,
    ))
    group(
        (f"pour {v.name} in {w.name}", "pour", (v.uuid, w.uuid))
        for v in around if _is_pour_source(v.cls) for w in pour_targets if w.uuid != v.uuid
    )
    for wire_end in _connections(things):  # one group per wire end, so each keeps a share
        group(wire_end)
    # rarely useful, offered last
    singles("close", (t for t in around if t.cls in _DOORS or t.cls in _OPENABLE))
    singles("look at", (t for t in around if not _is_focusable(t.cls) and t.cls not in _ROOMS))
    singles("eat", (t for t in held if t.cls.startswith("substance.food.")))
    return _cap(groups, cap)


def _connections(things: Sequence[Thing]) -> list[list[tuple[str, str, tuple[int, ...]]]]:
    """``connect`` each wire's terminal to every other terminal (not the same wire's), per wire end."""
    terminals = sorted((t for t in things if t.cls in _TERMINALS), key=lambda t: t.name)
    seen: set[frozenset[int]] = set()

    def wire_of(t: Thing) -> str:
        return t.name.split(" terminal")[0] if "wire" in t.name else ""

    out = []
    for w in (t for t in terminals if wire_of(t)):
        pairs = []
        for t in terminals:
            pair = frozenset((w.uuid, t.uuid))
            if t.uuid == w.uuid or pair in seen or wire_of(t) == wire_of(w):
                continue
            seen.add(pair)
            pairs.append((f"connect {t.name} to {w.name}", "connect", (t.uuid, w.uuid)))
        out.append(pairs)
    return out


def _cap(groups: list[list[Candidate]], cap: int) -> list[Candidate]:
    """Deduplicate; keep the first group whole, then trim the largest other groups first to ``cap``."""
    seen: set[str] = set()
    unique: list[list[Candidate]] = []
    for items in groups:
        kept = []
        for c in items:
            if c.text not in seen:
                seen.add(c.text)
                kept.append(c)
        unique.append(kept)
    first, rest = unique[0], unique[1:]
    budget = max(0, cap - len(first))
    sizes = [len(g) for g in rest]
    if sum(sizes) > budget:
        # the largest per-group quota q with sum(min(size, q)) <= budget
        lo, hi = 0, max(sizes)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if sum(min(s, mid) for s in sizes) <= budget:
                lo = mid
            else:
                hi = mid - 1
        spare = budget - sum(min(s, lo) for s in sizes)
        quotas = []
        for s in sizes:  # hand the remainder to the earlier (higher-priority) groups
            extra = 1 if s > lo and spare > 0 else 0
            spare -= extra
            quotas.append(min(s, lo + extra))
        rest = [g[:q] for g, q in zip(rest, quotas)]
    return first + [c for g in rest for c in g]


# ------------------------------------------------------------------------------- the JVM
class _Jvm(PrivateJvm):
    """A private JVM running ScienceWorld's ``PythonInterface`` behind a py4j gateway."""

    def __init__(self, java_opts: Sequence[str]) -> None:
        from scienceworld.constants import BASEPATH, JAR_PATH

        super().__init__("scienceworld", JAR_PATH, BASEPATH, java_opts)
        self.server = self.gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        # (scala.util.Random's object, its ``self`` field, the simulation's generator, a spare one)
        self._random: tuple[Any, Any, Any, Any] | None = None
        try:
            jvm = self.gateway.jvm
            field = jvm.java.lang.Class.forName("scala.util.Random").getDeclaredField("self")
            field.setAccessible(True)
            module = jvm.java.lang.Class.forName("scala.util.Random$").getField("MODULE$").get(None)
            self._random = (module, field, module.self(), jvm.java.util.Random(0))
        except Exception:  # noqa: BLE001 - another Scala library: reads are then made after every step
            self._random = None

    @property
    def can_isolate_random(self) -> bool:
        return self._random is not None

    @contextmanager
    def isolated_random(self) -> Iterator[None]:
        """Run JVM calls with a fresh, fixed-seed global ``scala.util.Random``, then put the real one back.

        ScienceWorld's unique-name chooser draws from the global generator that also drives the
        simulation, so reading the objects in view would otherwise change the episode.
        """
        if self._random is None:
            yield
            return
        module, field, simulation, spare = self._random
        spare.setSeed(0)  # the same draws every time: an object's name depends on the state alone
        field.set(module, spare)
        try:
            yield
        finally:
            field.set(module, simulation)


# ------------------------------------------------------------------------------- the env
class ScienceWorldEnv(JvmEnv):
    """ScienceWorld behind the :class:`TextEnv` contract; see the module docstring."""

    name: ClassVar[str] = "scienceworld"

    def __init__(
        self,
        max_steps: int | None = None,
        tasks: Sequence[str] | None = None,
        simplifications: str = "",
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        deterministic: bool = True,
        java_opts: Sequence[str] = (),
    ) -> None:
        if tasks is not None:
            tasks = [str(t) for t in ([tasks] if isinstance(tasks, str) else tasks)]
            unknown = [t for t in tasks if t not in MAX_VARIATIONS]
            if unknown or not tasks:
                raise EnvError(
                    f"scienceworld: unknown task name(s) {unknown or tasks}; valid tasks are {list(TASK_NAMES)}"
                )
        unknown = [x for x in str(simplifications).split(",") if x and x not in SIMPLIFICATIONS]
        if unknown:
            raise EnvError(f"scienceworld: unknown simplification(s) {unknown}; valid ones are {list(SIMPLIFICATIONS)}")
        if int(max_candidates) < len(_BASIC_ACTIONS):
            raise EnvError(f"scienceworld: max_candidates must be at least {len(_BASIC_ACTIONS)}, got {max_candidates}")
        if max_steps is not None and int(max_steps) < 1:
            raise EnvError(f"scienceworld: max_steps must be positive (or None for per-task limits), got {max_steps}")
        super().__init__(
            max_steps=100 if max_steps is None else int(max_steps),
            tasks=tasks,
            simplifications=simplifications,
            max_candidates=int(max_candidates),
            deterministic=bool(deterministic),
            java_opts=list(java_opts),
        )
        self._init_kwargs["max_steps"] = None if max_steps is None else int(max_steps)
        self._fixed_max_steps = None if max_steps is None else int(max_steps)
        self.tasks: tuple[str, ...] = tuple(tasks) if tasks else TASK_NAMES
        self.simplifications = simplifications
        self.max_candidates = int(max_candidates)
        self._java_opts = (JVM_DETERMINISM_OPTS if deterministic else ()) + tuple(java_opts)
        self._splits = self._make_splits()
        self._known: frozenset[str] = frozenset(t for ids in self._splits.values() for t in ids)
        self._jvm: _Jvm | None = None
        self._handles: tuple[Any, Any, Any] | None = None  # (input parser, agent, inventory)
        self._gold: dict[str, list[str]] = {}
        self._candidates: list[Candidate] | None = None
        self._view: tuple[list[Thing], str] | None = None
        self._task_name = ""
        self._variation = -1

    # ------------------------------------------------------------------ ids and splits
    def _make_splits(self) -> dict[str, list[str]]:
        per_task = {task: variation_splits(MAX_VARIATIONS[task]) for task in self.tasks}
        out: dict[str, list[str]] = {}
        for index, split in enumerate(SPLITS):
            columns = [per_task[task][index] for task in self.tasks]
            ids = []
            for k in range(max((len(c) for c in columns), default=0)):
                ids.extend(f"{task}:{col[k]}" for task, col in zip(self.tasks, columns) if k < len(col))
            out[split] = ids
        return out

    def _task_ids(self, split: str) -> list[str]:
        return self._splits[split]

    def is_task_id(self, task_id: str) -> bool:
        return task_id in self._known

    @staticmethod
    def parse_task_id(task_id: str) -> tuple[str, int]:
        name, _, variation = str(task_id).rpartition(":")
        return name, int(variation)

    # ------------------------------------------------------------------ the simulator
    def _server(self) -> Any:
        if self._jvm is None:
            self._jvm = _Jvm(self._java_opts)
        return self._jvm.server

    def _load(self, gold: bool = False) -> str:
        server = self._server()
        error = server.load(self._task_name, self._variation, self.simplifications, gold)
        if error:
            raise EnvError(f"scienceworld: cannot load {self._task_name}:{self._variation}: {error}")
        self._handles = None
        return self._advance("look around")

    def _advance(self, action: str) -> str:
        """One simulator step.

        Reading the objects in view draws from the simulator's global random generator
        (measured: it changes which bees pollinate which flowers later in ``grow-fruit``). Reads
        run with that generator swapped out (:meth:`_Jvm.isolated_random`), so they are made only
        when candidates are asked for; where the swap is impossible they are made after *every*
        step instead, so that the episode still depends on the actions alone.
        """
        obs = str(self._server().step(action))
        self._candidates = None
        self._view = None if self._jvm.can_isolate_random else self._read_view()
        return obs

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        self._task_name, self._variation = self.parse_task_id(task_id)
        self.max_steps = self._fixed_max_steps or STEP_LIMITS[self._task_name]
        obs = self._load()
        return obs, str(self._server().getTaskDescription())

    def _step(self, action: str) -> StepOutcome:
        obs = self._advance(action)
        server = self._server()
        raw = float(server.getScore())
        completed = bool(server.getCompleted())
        best = max(self.score, min(1.0, max(0.0, raw)))
        return StepOutcome(
            observation=obs,
            score=best,
            done=completed or raw < 0,
            valid=not _is_refusal(obs),
            success=best >= 1.0,
            extra={"sw_score": round(100 * raw)},
        )

    def _extra_info(self) -> dict[str, Any]:
        return {"task_name": self._task_name, "variation": self._variation}

    # ------------------------------------------------------------------ candidates
    def _admissible(self) -> list[str] | None:
        return [c.text for c in self.candidate_details()]

    def candidate_details(self) -> list[Candidate]:
        """The candidate list, with the template and object ids behind each action."""
        if self.task_id is None:
            return []
        if self._candidates is None:
            obs = self.last_observation
            choices = _AMBIGUOUS_CHOICE.findall(obs) if obs.startswith(_AMBIGUOUS) else []
            if choices:
                self._candidates = [Candidate(n, "choice") for n in choices]
            else:
                things, room = self._view if self._view is not None else self._read_view()
                self._candidates = build_candidates(things, room, self.max_candidates)
        return list(self._candidates)

    def _read_view(self) -> tuple[list[Thing], str]:
        """The objects in view (the inventory included) and the name of the agent's room."""
        server = self._server()
        try:
            if self._handles is None:
                interface = server.agentInterface().get()
                agent = server.agent().get()
                self._handles = (interface.inputParser(), agent, agent.getInventoryContainer())
            parser, agent, inventory = self._handles
            room = agent.getContainer().get()
            with self._jvm.isolated_random():
                # names come from the recursive table (it holds the inventory too, so they are
                # unique among everything the parser sees); the flat one says what is reachable
                # (not inside a closed container)
                room_table = parser.getAllUniqueReferentsWithTypeLUTJSON(room, False, True)
                reachable_table = parser.getAllUniqueReferentsWithTypeLUTJSON(room, False, False)
                held_table = parser.getAllUniqueReferentsWithTypeLUTJSON(inventory, False, True)
                # the inventory's own contents (not what is inside them), as "ObjectID (uuid, ..." texts
                in_hand = {int(u) for u in _OBJECT_ID.findall(str(inventory.getContainedObjects(False).mkString("|")))}
            room_name = str(room.getName())
        except Exception:  # noqa: BLE001 - internals of another version: fall back to the public API
            look = str(server.freeActionLook())
            match = re.search(r"This room is called the (.+?)\.", look)
            with self._jvm.isolated_random():
                table = server.getPossibleObjectReferentTypesLUTJSON()
            return _parse_table(table), match.group(1) if match else ""
        held = {t.uuid: t.name for t in _parse_table(held_table)}
        reachable = {t.uuid for t in _parse_table(reachable_table)} | set(held)
        things = []
        for t in _parse_table(room_table):
            if t.uuid not in reachable:
                continue
            if t.uuid in held:
                # "<name> in inventory" (the gold paths' form) for what is held directly; the
                # simulator's own unique name for what sits inside a held container
                inner = held[t.uuid]
                direct = t.uuid in in_hand and " in " not in inner and " on " not in inner
                t = Thing(f"{inner} in inventory" if direct else t.name, t.cls, t.uuid, held=True)
            things.append(t)
        return things, room_name

    # ------------------------------------------------------------------ expert
    def gold_actions(self, task_id: str | None = None) -> list[str]:
        """ScienceWorld's gold action sequence for a task (the current one by default)."""
        task_id = self.check_task_id(task_id if task_id is not None else (self.task_id or ""))
        if task_id not in self._gold:
            current = self.task_id, self._task_name, self._variation
            self._task_name, self._variation = self.parse_task_id(task_id)
            obs = self._load(gold=True)  # makes the gold path, then loads the variation afresh
            self._gold[task_id] = [str(a).strip() for a in self._server().getGoldActionSequence()]
            self._task_name, self._variation = current[1], current[2]
            if current[0] is not None:  # rebuild the current episode's state
                if current[0] != task_id:
                    obs = self._load()
                for action in self.actions:
                    obs = self._advance(action)
                if obs != self.last_observation:
                    raise EnvError(
                        f"scienceworld: replaying {self.task_id!r} after making its gold path gave another "
                        "observation; the JVM is not deterministic (was deterministic=False given?)"
                    )
        return list(self._gold[task_id])

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        super().close()
        self._handles = None


def _parse_table(text: str) -> list[Thing]:
    """Parse ``getAllUniqueReferentsWithTypeLUTJSON``: ``{type: {uuid: name, ..., "desc": class}}``."""
    out = []
    for entry in json.loads(text).values():
        cls = str(entry.get("desc", "")).removeprefix("scienceworld.objects.")
        for uuid, name in entry.items():
            if uuid != "desc":
                out.append(Thing(str(name), cls, int(uuid)))
    return out
