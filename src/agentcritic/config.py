"""Configs are data: pydantic models with working defaults, loaded from TOML, overridden from the CLI.

Errors name the file, the line and the field, e.g.
``rollout.toml:4: field 'limit': Input should be a valid integer (got 'ten')``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from agentcritic.errors import AgentCriticError
from agentcritic.specs import EnvSpec, PolicySpec

M = TypeVar("M", bound=BaseModel)


class ConfigError(AgentCriticError, ValueError):
    """A config file or override that cannot be used; the message says where and why."""


def known_env(name: str) -> str:
    """``name`` if it names an env (built-in, registered, an entry point, or a class path
    ``package.module:Class`` that imports a ``TextEnv``), else an error saying what failed."""
    from agentcritic.envs import registry

    # an EnvError (a ValueError) says what failed; a class path is imported now, so a typo in it
    # stops the command before any work, a name's class is imported when the env is made
    if registry.is_class_path(name):
        registry.env_class(name)
    else:
        registry.entry(name)
    return name


def known_policy(name: str) -> str:
    """``name`` if it is a known policy (see :data:`agentcritic.agents.POLICIES`), else an error."""
    from agentcritic.agents import POLICIES

    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid policies are {list(POLICIES)}")
    return name


#: a config field holding an env's name or class path (``package.module:Class``)
EnvName = Annotated[str, AfterValidator(known_env)]
#: a config field holding a policy's name
PolicyName = Annotated[str, AfterValidator(known_policy)]


class StageConfig(BaseModel):
    """Base of every stage config: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


#: ``--concurrency``: the field of every stage whose jobs may wait on a served model
CONCURRENCY_FIELD: Any = Field(1, ge=1, description="jobs run at once on threads inside each worker (and requests "
                               "a job keeps in flight): for a served model, which answers many together")


class PolicyFields(BaseModel):
    """How an LLM policy acts; a stage config with a ``policy`` field takes these beside it."""

    mode: Literal["choose", "generate"] = Field("choose", description="LLM policies: score listed actions or write them")
    temperature: float = Field(0.0, ge=0.0, description="LLM policies: sampling temperature (0 = greedy)")
    few_shot: bool = Field(True, description="LLM policies: show the expert's episode on a training task")
    constrain: bool = Field(False, description="LLM policies in generate mode: decode under the env's action "
                            "grammar, where it offers one (constrained decoding)")
    llm: dict[str, Any] = Field(default_factory=dict, description="LLM policies: backend kwargs (base_url, model, path …)")
    max_llm_failure_rate: float = Field(0.05, ge=0.0, le=1.0, description="stop with an error when more of the "
                                        "stage's LLM calls fail (a dead or hung server)")

    def policy_spec(self) -> PolicySpec:
        """The acting policy as one block (what jobs carry to workers)."""
        return PolicySpec(name=self.policy, mode=self.mode, temperature=self.temperature,  # type: ignore[attr-defined]
                          few_shot=self.few_shot, constrain=self.constrain, llm=self.llm)


class EnvFields(BaseModel):
    """The env of a one-env stage: its name, keyword arguments and step limit."""

    env: EnvName = Field(description="registered env name (see `agentcritic envs`)")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for envs.make")
    max_steps: int | None = Field(None, ge=1, description="override the env's step limit")

    def env_spec(self) -> EnvSpec:
        """The env as one block (what jobs carry to workers)."""
        return EnvSpec.of(self.env, self.env_kwargs, self.max_steps)


class RolloutConfig(EnvFields, PolicyFields, StageConfig):
    """Roll a policy out over a split of an env into a run folder."""

    policy: PolicyName = Field("expert", description="expert | random | smollm2 | hf | openai | llamacpp")
    split: Literal["train", "dev", "test"] = Field("test", description="task split")
    limit: int | None = Field(None, ge=1, description="first N tasks of the split (all when unset)")
    samples: int = Field(1, ge=1, description="episodes per task")
    seed: int = Field(0, description="base seed; each episode's seed derives from it and the task")
    workers: int = Field(1, ge=1, description="parallel worker processes")
    concurrency: int = CONCURRENCY_FIELD
    executor: Literal["pool", "ray"] = Field("pool", description="local process pool or Ray")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` → (["a", "b"], 3). The value is read as TOML, falling back to a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. limit=10 or env_kwargs.num_products=5000")
    key, _, raw = text.partition("=")
    path = [p.strip() for p in key.split(".")]
    if not all(path):
        raise ConfigError(f"override {text!r}: empty key part")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    data = _deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a table")
            node = child
        node[path[-1]] = value
    return data


def _deepcopy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; ConfigError when it is missing, a folder or not TOML."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file; check the path given to --config")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file; give the path of a TOML file "
                          "(examples ship in the package's configs/ folder)")
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror}); "
                          "check the path and its permissions") from exc


def validate(
    model: type[M], data: dict[str, Any], *, source: str | Path | None = None, text: str | None = None
) -> M:
    """Build ``model`` from ``data``; on failure raise ConfigError naming file, line and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            where = str(source) if source else "config"
            lineno = _line_of(text, loc) if text else None
            if lineno:
                where += f":{lineno}"
            got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            # our validators raise ValueError with a full sentence; pydantic prefixes it with "Value error, "
            msg = err["msg"].removeprefix("Value error, ") if err["type"] == "value_error" else err["msg"]
            field = f"field '{'.'.join(loc)}': " if loc else ""
            lines.append(f"{where}: {field}{msg}{got}")
        raise ConfigError("\n".join(lines)) from None


def _line_of(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of the key ``loc`` in TOML text (the last key part wins)."""
    if not loc:
        return None
    table: list[str] = []
    candidates = []
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        m = re.match(r"^\[+\s*([^\]]+?)\s*\]+", stripped)
        if m:
            table = [p.strip().strip('"') for p in m.group(1).split(".")]
            continue
        m = re.match(r'^("?)([A-Za-z0-9_.\-]+)\1\s*=', stripped)
        if m:
            key = table + [p.strip() for p in m.group(2).split(".")]
            if key == loc[: len(key)]:
                candidates.append((len(key), i))
    if not candidates:
        return None
    return max(candidates)[1]


def load_config(model: type[M], path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> M:
    """Read ``path`` (TOML), apply ``base`` defaults under it and ``overrides`` over it, validate."""
    data: dict[str, Any] = dict(base or {})
    text = None
    if path is not None:
        data.update(read_toml(path))
        text = Path(path).read_text("utf-8")  # read_toml succeeded, so this is a readable file
    data = apply_overrides(data, overrides or [])
    return validate(model, data, source=path, text=text)
