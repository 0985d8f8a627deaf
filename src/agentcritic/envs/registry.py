"""Environment registry: which class an env name stands for, imported only when made.

An env name is one of:

- a **built-in** name (``game24``, ``shop`` …) or one given to :func:`register` in this process;
- a name an installed package declares in the ``agentcritic.envs`` entry-point group::

      [project.entry-points."agentcritic.envs"]
      counter = "mypkg.envs:CounterEnv"

  (found through :mod:`importlib.metadata`; the class is imported only when the env is made);
- a **class path** ``package.module:Class``, which needs no registration at all.

The name an env is made by is the name it carries (``env.name``): trajectories, records, reports
and the reward models' view of observations (:func:`agentcritic.rendering.observation_view`) all
use it, so an env made as ``mypkg.envs:CounterEnv`` is that everywhere.

Worker processes (a process pool, a local Ray instance) start with none of this process's
:func:`register` calls; :func:`register` therefore also records its names in the environment
variable :data:`ENV_VAR`, which the processes this one starts inherit. A class path and an
entry point need nothing of the sort: the class must only be importable there (the ``agentcritic``
command puts the current directory on the import path, as ``python -m`` does, and spawned workers
inherit the parent's import path).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from agentcritic.envs.base import EnvError, TextEnv

#: the envs that ship with agentcritic
BUILTIN: dict[str, str] = {
    "game24": "agentcritic.envs.game24:Game24Env",
    "shop": "agentcritic.envs.shop.env:ShopEnv",
    "scienceworld": "agentcritic.envs.scienceworld:ScienceWorldEnv",
    "textworld": "agentcritic.envs.textworld:TextWorldEnv",
    "household": "agentcritic.envs.household:HouseholdEnv",
}
#: the entry-point group through which an installed package registers its envs
ENTRY_POINT_GROUP = "agentcritic.envs"
#: environment variable holding this process's :func:`register` calls for the processes it starts
ENV_VAR = "AGENTCRITIC_ENVS"

_REGISTRY: dict[str, str | type] = dict(BUILTIN)
_ENTRY_POINTS: dict[tuple[str, ...], dict[str, tuple[str, str]]] = {}

_HOW_TO_NAME = (
    "an env of your own is named by its class path, package.module:Class (the module importable from "
    "here), or registered by an installed package under the 'agentcritic.envs' entry-point group"
)
_WHAT_AN_ENV_IS = (
    "an env class derives from agentcritic.envs.TextEnv and implements _task_ids, _reset and _step "
    "(see README, 'Your own environment'), then `agentcritic check-env package.module:Class` checks it"
)


@dataclass(frozen=True)
class EnvEntry:
    """Where an env name comes from: ``source`` is ``built-in``, ``registered``, ``entry point``
    or ``class path``; ``target`` is its ``module:Class``; ``package`` the distribution that
    declares an entry point."""

    name: str
    target: str
    source: str
    package: str | None = None

    def describe(self) -> str:
        """The source as ``agentcritic envs`` shows it."""
        return f"entry point ({self.package})" if self.source == "entry point" else self.source


def is_class_path(name: str) -> bool:
    """Whether ``name`` is written as ``package.module:Class``."""
    return ":" in name


def register(name: str, entry_point: str | type[TextEnv]) -> None:
    """Register an env under ``name``; ``entry_point`` is a class or ``"module:Class"``.

    The name holds in this process and in the worker processes it starts afterwards (through
    :data:`ENV_VAR`), as long as the class is importable there; a class defined inside a function
    is known to this process only.
    """
    if not name or is_class_path(name):
        raise EnvError(f"cannot register an env as {name!r}: a name is a plain word such as 'counter' "
                       "(a name with ':' is read as a class path, package.module:Class, and needs no registering)")
    if isinstance(entry_point, str):
        _split_class_path(entry_point, name)
    _REGISTRY[name] = entry_point
    target = entry_point if isinstance(entry_point, str) else _class_path_of(entry_point)
    if "<locals>" not in target:
        exported = _exported()
        exported[name] = target
        os.environ[ENV_VAR] = json.dumps(exported, sort_keys=True)


def _class_path_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _exported() -> dict[str, str]:
    """The names registered by the process that started this one (and by this one)."""
    try:
        data = json.loads(os.environ.get(ENV_VAR) or "{}")
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _entry_points() -> dict[str, tuple[str, str]]:
    """name -> (module:attr, distribution) of the ``agentcritic.envs`` entry points, read once per
    import path (the scan of installed packages is the slow part; a changed ``sys.path`` reads again)."""
    key = tuple(sys.path)
    if key not in _ENTRY_POINTS:
        from importlib.metadata import entry_points

        found: dict[str, tuple[str, str]] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in found:  # the first on the import path wins, as imports do
                dist = getattr(ep, "dist", None)
                found[ep.name] = (ep.value.split("[")[0].strip(), getattr(dist, "name", None) or "?")
        _ENTRY_POINTS.clear()
        _ENTRY_POINTS[key] = found
    return _ENTRY_POINTS[key]


def entries() -> list[EnvEntry]:
    """Every env known by name: built-in, registered (here or by the parent process) and entry
    points (a name taken by an earlier kind is not listed again)."""
    out: dict[str, EnvEntry] = {}
    for name, target in _REGISTRY.items():
        source = "built-in" if name in BUILTIN and target == BUILTIN[name] else "registered"
        out[name] = EnvEntry(name, target if isinstance(target, str) else _class_path_of(target), source)
    for name, target in _exported().items():
        out.setdefault(name, EnvEntry(name, target, "registered"))
    for name, (target, dist) in _entry_points().items():
        out.setdefault(name, EnvEntry(name, target, "entry point", dist))
    return [out[n] for n in sorted(out)]


def names() -> list[str]:
    """Every env known by name (class paths aside); see :func:`entries`."""
    return [e.name for e in entries()]


def entry(name: str) -> EnvEntry:
    """Where ``name`` comes from; an :class:`EnvError` naming the known envs when it is unknown."""
    if is_class_path(name):
        _split_class_path(name, name)
        return EnvEntry(name, name, "class path")
    for e in entries():
        if e.name == name:
            return e
    raise EnvError(f"unknown env {name!r}; the envs known by name are {names()}, and {_HOW_TO_NAME}")


def env_class(name: str) -> type[TextEnv]:
    """The class the env ``name`` stands for (imported now); an :class:`EnvError` that says what
    failed (no such name, a module that does not import, no such class, not a ``TextEnv``)."""
    target = _REGISTRY.get(name)
    if isinstance(target, type):
        return _checked(target, name, name)
    if isinstance(target, str):  # the common case, without a scan of the entry points
        return _load(target, name, "" if BUILTIN.get(name) == target else " (registered)")
    e = entry(name)
    origin = {"entry point": f" (the entry point of package {e.package!r})", "registered": " (registered)"}
    return _load(e.target, name, origin.get(e.source, ""))


def _split_class_path(target: str, name: str) -> tuple[str, str]:
    module, sep, attr = target.strip().partition(":")
    if not sep or not module or not attr or ":" in attr:
        raise EnvError(f"env {name!r}: {target!r} is not a class path; write it as package.module:Class, "
                       "e.g. mypkg.envs:CounterEnv")
    return module, attr


def _load(target: str, name: str, origin: str) -> type[TextEnv]:
    module_name, attr = _split_class_path(target, name)
    where = f"env {name!r}{origin}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) and module_name[len(exc.name):][:1] in ("", "."):
            raise EnvError(
                f"{where}: cannot import module {module_name!r} (no module named {exc.name!r}). Check the "
                "spelling, and that the module is importable from here: install its package, run from the "
                "folder that holds it (the agentcritic command puts the current directory on the import "
                f"path), or add that folder to PYTHONPATH; {_HOW_TO_NAME}"
            ) from None
        raise EnvError(f"{where}: importing module {module_name!r} failed because a module it imports is "
                       f"missing ({exc}); install what it needs") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the user's module is reported as one paragraph
        raise EnvError(f"{where}: importing module {module_name!r} raised {type(exc).__name__}: {exc}; "
                       "fix the module (python -c 'import " + module_name + "' shows the traceback)") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            classes = sorted(n for n, v in vars(module).items()
                             if isinstance(v, type) and issubclass(v, TextEnv) and v is not TextEnv)
            hint = f"its TextEnv classes are {classes}" if classes else "it defines no TextEnv class"
            raise EnvError(f"{where}: module {module_name!r} has no attribute {attr!r}; {hint}. "
                           "Correct the class name after the ':'")
        obj = getattr(obj, part)
    return _checked(obj, name, where)


def _checked(obj: Any, name: str, where: str) -> type[TextEnv]:
    if isinstance(obj, type) and issubclass(obj, TextEnv):
        return obj
    kind = f"the class {obj.__name__!r}" if isinstance(obj, type) else f"a {type(obj).__name__}"
    if where == name:
        where = f"env {name!r}"
    raise EnvError(f"{where} is {kind}, not a TextEnv subclass; {_WHAT_AN_ENV_IS}")


def options(name: str) -> list[str] | None:
    """The keyword arguments the env ``name`` takes (``env_kwargs`` in a config); None: any."""
    params = inspect.signature(env_class(name).__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def make(name: str, **kwargs: Any) -> TextEnv:
    """Build an env by name or class path: ``make("game24")``, ``make("shop", num_products=50_000)``,
    ``make("mypkg.envs:CounterEnv")``. The env carries ``name`` as its name.

    A keyword the env does not take is an :class:`EnvError` that lists the ones it does.
    """
    valid = options(name)
    unknown = sorted(set(kwargs) - set(valid)) if valid is not None else []
    if unknown:
        raise EnvError(
            f"env {name!r} takes no option {', '.join(map(repr, unknown))}; its options are {valid}. "
            f"Correct or remove {', '.join('env_kwargs.' + k for k in unknown)} (in the --config file or a --set)"
        )
    env = env_class(name)(**kwargs)
    if env.name != name:
        env.name = name  # type: ignore[misc]  # records and rendering use the name it was made by
    env.made_from = (name, dict(kwargs))  # type: ignore[attr-defined]  # so a planner can make more (EnvSpec.of_env)
    return env
