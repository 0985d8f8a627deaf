"""Run planning methods over env task splits, in parallel and resumably, into a results table.

``run_evaluation(EvalConfig, out)`` runs every (env, split, method, task, seed) once as a job
through :mod:`agentcritic.parallel` and appends one record per job to ``out/results.jsonl``;
re-running resumes (finished jobs are skipped, nothing is written twice). The records are data:
:func:`agentcritic.report.tables.results_table` turns them into the paper's layout (rows = policy ×
method, columns = env metrics, then cost per task, plus the oracle line for Sampling).

A record (one line of ``results.jsonl``)::

    env, split, method (the table label), planner (the planner name), params, policy, task_id,
    seed, score, success, rm_score, steps, cost {llm_calls, prompt_tokens, completion_tokens,
    rm_calls, env_steps, seconds}, oracle_score, oracle_success, candidates [{score, success,
    steps, price (shop), rm_score}], meta (the planner's), trajectory (the chosen one)

``score`` and ``success`` are the env's own reward and success of the chosen trajectory; for
Sampling they are the means over its N samples (one random sample's expected result, armap.md §4),
and ``oracle_*`` is the best of the N by env reward, reported only as the oracle line.
"""

from __future__ import annotations

import importlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentcritic.config import CONCURRENCY_FIELD, EnvName, PolicyFields, PolicyName, StageConfig
from agentcritic.errors import AgentCriticError
from agentcritic.parallel import llm_calls_of, run_jobs
from agentcritic.specs import EnvSpec, PolicySpec
from agentcritic.planning import METHODS, NEEDS_TARGET, PARAMS
from agentcritic.planning.params import parse_params
from agentcritic.store import RunStore
from agentcritic.worker_cache import cached

STAGE = "results"


class EvalError(AgentCriticError, ValueError):
    """An evaluation that cannot run as configured (a planner or target that cannot be built)."""


def method_labels() -> dict[str, str]:
    """The built-in planners' labels as the paper names them (``planning.METHODS``)."""
    return dict(METHODS)


class TargetSpec(StageConfig):
    """What planners score trajectories with: a trained reward model or the env's own reward."""

    kind: Literal["rm", "env"] = Field("rm", description="rm = a trained reward model; env = the env's true reward (an oracle)")
    rm: str | None = Field(None, description="folder of a saved reward model (RewardModel.save_pretrained), for kind = rm")
    terms: dict[str, float] = Field(default_factory=dict, description="extra named terms and their weights, e.g. {length = 0.05}")

    @model_validator(mode="after")
    def _rm_folder_given(self) -> TargetSpec:
        if self.kind == "rm" and not self.rm:
            raise ValueError("kind = 'rm' needs rm = the folder of a trained reward model (or kind = 'env')")
        return self


class MethodSpec(StageConfig):
    """One row of the table: a planner, its parameters and (optionally) its own target."""

    method: str = Field(description="greedy | sampling | best_of_n | reflexion | mcts | module:callable")
    label: str | None = Field(None, description="row label; default: the paper's name (ARMAP-B …)")
    params: dict[str, Any] = Field(default_factory=dict, description="planner keyword arguments (n, rollouts, …)")
    target: TargetSpec | None = Field(None, description="this method's target; default: the evaluation's target")
    policy: PolicyName | None = Field(
        None, description="this row's acting policy, e.g. random: the search with a uniform prior and no language "
        "model (the row that shows what the LM contributes); default: the evaluation's policy")

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        labels = method_labels()
        if name not in labels and ":" not in name:
            raise ValueError(f"unknown method {name!r}; valid methods are {list(labels)} or 'module:callable'")
        return name

    @model_validator(mode="after")
    def _valid_params(self) -> MethodSpec:
        """A parameter the planner does not take is a config error, found before any episode runs."""
        if self.method in PARAMS:
            parse_params(PARAMS[self.method], self.method, self.params)
        return self

    @property
    def row_label(self) -> str:
        if self.label:
            return self.label
        name = method_labels().get(self.method, self.method)
        return f"{name} [{self.policy}]" if self.policy else name

    def policy_spec(self, default: PolicySpec) -> PolicySpec:
        """The row's policy: its own (with the evaluation's LLM settings), else ``default``."""
        return default.model_copy(update={"name": self.policy}) if self.policy else default


class CalibrationSpec(StageConfig):
    """Dev data on which Reflexion's acceptance threshold is calibrated (armap.md §4), per env and target."""

    split: str = Field("dev", description="split the calibration tasks come from (never the evaluated one)")
    limit: int = Field(10, ge=1, description="first N tasks of that split")
    policies: list[str] = Field(
        default_factory=lambda: ["expert", "random"],
        description="policies rolled out there; each trajectory is labelled by the env's success "
        "('policy' = the evaluated policy, greedy)",
    )


def default_methods() -> list[MethodSpec]:
    return [MethodSpec(method=m) for m in ("greedy", "sampling", "reflexion", "best_of_n", "mcts")]


class EvalConfig(PolicyFields, StageConfig):
    """Evaluate methods × envs × splits × tasks × seeds for one policy."""

    envs: list[EnvName] = Field(default_factory=lambda: ["game24"], description="registered env names")
    env_kwargs: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per env: keyword arguments for envs.make")
    split: list[str] = Field(default_factory=lambda: ["test"], description="split(s) to evaluate (scienceworld: dev = seen, test = unseen)")
    limit: int | None = Field(None, ge=1, description="first N tasks of each split (all when unset)")
    policy: PolicyName = Field("smollm2", description="acting policy: smollm2 | hf | openai | llamacpp | expert | random")
    temperature: float = Field(0.0, ge=0.0, description="policy temperature; planners that sample set their own")
    methods: list[MethodSpec] = Field(default_factory=default_methods, description="table rows: planners and their params")
    target: TargetSpec | None = Field(None, description="default scoring target of planners that need one")
    calibration: CalibrationSpec = Field(
        default_factory=CalibrationSpec, description="dev data for Reflexion's threshold (when params set none)"
    )
    samples: int = Field(1, ge=1, description="seeds per task (each is one job per method)")
    seed: int = Field(0, description="base seed; each job's seed derives from it, the task and the sample")
    max_steps: int | None = Field(None, ge=1, description="override every env's step limit")
    share_llm_cache: bool = Field(
        False, description="let jobs in one worker reuse cached LM scores: faster, but a method's cost then "
        "depends on which jobs ran before it in that worker"
    )
    workers: int = Field(1, ge=1, description="parallel worker processes")
    concurrency: int = CONCURRENCY_FIELD
    executor: Literal["pool", "ray"] = Field("pool", description="local process pool or Ray")

    @field_validator("split", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("envs")
    @classmethod
    def _some_envs(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("list at least one env")
        return values

    @model_validator(mode="after")
    def _rows_are_well_defined(self) -> EvalConfig:
        labels = [m.row_label for m in self.methods]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"methods: labels {dupes} appear twice; give each row its own label")
        missing = [m.row_label for m in self.methods if m.method in NEEDS_TARGET and m.target is None]
        if missing and self.target is None:
            raise ValueError(
                f"methods {missing} score trajectories and need a target: set target.rm = the folder of a "
                "trained reward model, or target.kind = 'env' for the env's true reward (an oracle)"
            )
        if not self.methods:
            raise ValueError("methods: list at least one method")
        return self

    def env_spec(self, name: str) -> EnvSpec:
        """The env ``name`` with its keyword arguments and the step limit this config sets."""
        return EnvSpec.of(name, self.env_kwargs.get(name), self.max_steps)

    def policy_label(self) -> str:
        from agentcritic.agents import LLM_POLICIES

        if self.policy not in LLM_POLICIES:
            return self.policy
        model = self.llm.get("model") or self.llm.get("path")
        name = f"{self.policy}:{Path(str(model)).name}" if model else self.policy
        return f"{name} ({self.mode})"


# ------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class EvalJob:
    """One planner on one task with one seed; plain data, so it pickles to workers cheaply."""

    key: str
    env: EnvSpec
    split: str
    task_id: str
    seed: int
    label: str
    method: str
    params: dict[str, Any]
    target: dict[str, Any] | None
    policy: PolicySpec
    policy_label: str
    share_llm_cache: bool = False


def record_key(env: str, split: str, label: str, task_id: str, seed: int) -> str:
    return f"{env}|{split}|{label}|{task_id}|{seed}"


def eval_jobs(config: EvalConfig, thresholds: dict[str, float] | None = None) -> list[EvalJob]:
    """Every (env, split, method, task, seed) of ``config``, in a stable order.

    ``thresholds`` (from :func:`calibrate_thresholds`) fill in Reflexion's ``threshold`` param.
    """
    from agentcritic.agents import derive_seed

    jobs: list[EvalJob] = []
    policy = config.policy_spec()
    for name in config.envs:
        env_spec = config.env_spec(name)
        env = env_spec.make()
        try:
            tasks = {split: env.task_ids(split) for split in config.split}
        finally:
            env.close()
        for split, ids in tasks.items():
            ids = ids[: config.limit] if config.limit else ids
            for spec in config.methods:
                target = spec.target or config.target
                params = dict(spec.params)
                key = calibration_key(name, target)
                if spec.method == "reflexion" and "threshold" not in params and key in (thresholds or {}):
                    params["threshold"] = (thresholds or {})[key]
                for task in ids:
                    for sample in range(config.samples):
                        seed = derive_seed(config.seed, name, task, sample) % (2**31)
                        jobs.append(EvalJob(
                            key=record_key(name, split, spec.row_label, task, seed),
                            env=env_spec, split=split, task_id=task, seed=seed,
                            label=spec.row_label, method=spec.method, params=params,
                            target=target.model_dump(mode="json") if target else None,
                            policy=spec.policy_spec(policy),
                            policy_label=spec.policy if spec.policy else config.policy_label(),
                            share_llm_cache=config.share_llm_cache,
                        ))
    return jobs


def load_target(spec: dict[str, Any] | None, env: Any) -> Any:
    """Build the scoring target of ``spec`` for ``env``; the reward model is loaded once per process."""
    if spec is None:
        return None
    from agentcritic.rm.custom import make_target

    rm = None
    if spec["kind"] == "rm":
        folder = str(spec["rm"])
        if not Path(folder).exists():
            raise EvalError(f"target.rm: no reward model folder at {folder}")

        def load() -> Any:
            from agentcritic.rm import RewardModel
            from agentcritic.rm.stages import resolve_model_dir

            model_dir, _ = resolve_model_dir(folder)  # a train-rm run folder or the model folder itself
            return RewardModel.from_pretrained(model_dir)

        rm = cached("reward model", folder, load)  # loaded once per process
    return make_target(kind=spec["kind"], rm=rm, terms=dict(spec.get("terms") or {}) or None)


def build_planner(method: str, agent: Any, target: Any, params: dict[str, Any]) -> Any:
    """A built-in planner by name (``agentcritic.planning.make_planner``) or ``module:callable``."""
    if ":" in method:
        module, _, attr = method.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise EvalError(f"method {method!r}: cannot import {attr} from {module} ({exc})") from exc
        return factory(agent, target, **params)
    from agentcritic.planning import make_planner

    try:
        return make_planner(method, agent, target=target, **params)
    except TypeError as exc:
        raise EvalError(f"method {method!r}: bad params {sorted(params)} ({exc})") from exc


def calibration_key(env: str, target: TargetSpec | None) -> str:
    return env + "|" + (json.dumps(target.model_dump(mode="json"), sort_keys=True) if target else "none")


def read_calibration(path: Path) -> dict[str, dict[str, Any]]:
    """The thresholds a run kept in ``calibration.json``; {} where there is none or it is unreadable
    (it is a cache: what it lacks is calibrated again)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("threshold"), (int, float))}


def calibrate_thresholds(config: EvalConfig, progress: bool = True,
                         known: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Reflexion thresholds per (env, target) that need one and are not ``known``, calibrated on dev
    trajectories.

    The dev trajectories come from ``config.calibration.policies`` and are labelled by the env's own
    success; the threshold maximises the balanced accuracy of "accept when target score >= t"
    (:func:`agentcritic.planning.reflexion.calibrate_threshold`). A target with its own
    ``success_threshold`` (the env's reward) needs none.
    """
    from tqdm.auto import tqdm

    from agentcritic.agents import rollout

    todo = []
    for name in config.envs:
        for spec in config.methods:
            target = spec.target or config.target
            key = calibration_key(name, target)
            if (spec.method == "reflexion" and "threshold" not in spec.params and key not in (known or set())
                    and key not in [k for k, *_ in todo]):
                todo.append((key, name, target))
    out: dict[str, dict[str, Any]] = {}
    cal = config.calibration
    for key, name, target_spec in todo:
        env = config.env_spec(name).cached()
        target = load_target(target_spec.model_dump(mode="json") if target_spec else None, env)
        if target is None or getattr(target, "success_threshold", None) is not None:
            continue
        tasks = env.task_ids(cal.split)[: cal.limit]
        trajectories = []
        bar = tqdm(total=len(tasks) * len(cal.policies), desc=f"calibrate {name}", disable=not progress, unit="ep")
        for policy in cal.policies:
            spec = config.policy_spec() if policy == "policy" else PolicySpec(name=policy)
            for task in tasks:
                agent = spec.make(config.seed)
                trajectories.append(rollout(env, agent, task, seed=config.seed))
                bar.update(1)
        bar.close()
        from agentcritic.planning.reflexion import calibrate_threshold

        scores = target.score(trajectories)
        pos = [s for s, t in zip(scores, trajectories) if t.success]
        neg = [s for s, t in zip(scores, trajectories) if not t.success]
        if not pos or not neg:
            raise EvalError(
                f"calibration of Reflexion's threshold on {name}/{cal.split}: the policies {cal.policies} gave "
                f"{len(pos)} successes and {len(neg)} failures; it needs both (add 'expert' or 'random' to "
                "calibration.policies, or set params.threshold)"
            )
        out[key] = {"env": name, "threshold": float(calibrate_threshold(pos, neg)), "successes": len(pos),
                    "failures": len(neg), "split": cal.split, "policies": list(cal.policies)}
    return out


def run_eval_job(job: EvalJob) -> tuple[str, dict[str, Any]]:
    """Solve one task with one planner and return (key, record). Runs in any executor's worker."""
    env = job.env.cached()
    agent = job.policy.make(job.seed)
    lm = getattr(agent, "lm", None)
    if not job.share_llm_cache and hasattr(lm, "clear_cache"):
        # The model stays loaded, but each job starts with no cached scores, so its cost (LLM calls,
        # tokens, seconds) is its own and the same whichever jobs ran before it in this worker.
        lm.clear_cache()
    target = load_target(job.target, env)
    planner = build_planner(job.method, agent, target, job.params)
    start = time.perf_counter()
    result = planner.solve(env, job.task_id, seed=job.seed)
    elapsed = time.perf_counter() - start
    return job.key, make_record(job, result, elapsed)


def make_record(job: EvalJob, result: Any, elapsed: float) -> dict[str, Any]:
    """The results.jsonl record of one solved job (see the module docstring)."""
    traj = result.trajectory
    cost = result.cost.to_dict()
    if not cost.get("seconds"):
        cost["seconds"] = elapsed
    target_scores = result.meta.get("target_scores")
    if not isinstance(target_scores, list) or len(target_scores) != len(result.candidates):
        target_scores = [c.meta.get("rm_score") for c in result.candidates]
    candidates = [
        {"score": float(c.score or 0.0), "success": bool(c.success), "steps": len(c.steps),
         "price": _price_paid(c), "rm_score": None if s is None else float(s)}
        for c, s in zip(result.candidates, target_scores)
    ]
    score, success = float(traj.score or 0.0), float(bool(traj.success))
    oracle_score = oracle_success = None
    if job.method == "sampling" and candidates:
        # Sampling reports one random sample's expected result; its best of N is only an oracle.
        meta = result.meta
        score = float(meta.get("mean_score", statistics.fmean(c["score"] for c in candidates)))
        success = float(meta.get("mean_success", statistics.fmean(float(c["success"]) for c in candidates)))
        best = max(candidates, key=lambda c: (c["score"], c["success"]))
        oracle_score = float(meta.get("oracle_score", best["score"]))
        oracle_success = float(bool(meta.get("oracle_success", best["success"])))
    return {
        "env": job.env.name, "split": job.split, "method": job.label, "planner": job.method, "params": job.params,
        "policy": job.policy_label, "task_id": job.task_id, "seed": job.seed,
        "score": score, "success": success,
        "rm_score": None if result.rm_score is None else float(result.rm_score),
        "steps": len(traj.steps), "price": _price_paid(traj), "cost": cost,
        "oracle_score": oracle_score, "oracle_success": oracle_success,
        "candidates": candidates, "meta": _jsonable(result.meta), "trajectory": traj.to_dict(),
    }


def _price_paid(traj: Any) -> float | None:
    """The price of the item bought (shop); None in envs without prices."""
    if traj.env != "shop":
        return None
    from agentcritic.rm.custom import price_term

    return price_term(traj)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_evaluation(config: EvalConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) ``config`` into the run folder ``out``; return a summary (counts, no table)."""
    start = time.perf_counter()
    with RunStore(out) as store:  # claimed by the stage contract (agentcritic.stage)
        calibration = read_calibration(store.root / "calibration.json")
        missing = calibrate_thresholds(config, progress, known=set(calibration))
        if missing or not (store.root / "calibration.json").exists():
            calibration.update(missing)
            store.write_json("calibration.json", calibration)
        jobs = eval_jobs(config, {k: v["threshold"] for k, v in calibration.items()})
        stats = run_jobs(jobs, store.shard(STAGE), workers=config.workers, executor=config.executor,
                         concurrency=config.concurrency, progress="evaluate" if progress else None, fn=run_eval_job)  # type: ignore[arg-type]
        records = load_records(store.root / f"{STAGE}.jsonl")
        summary = {
            "records": len(records), "jobs": len(jobs), "written": stats["written"],
            "resumed_from": stats["skipped"], "pending": stats["pending"], "envs": list(config.envs),
            "methods": [m.row_label for m in config.methods], "policy": config.policy_label(),
            "errors": stats["pending"] + sum(bool(((r.get("trajectory") or {}).get("meta") or {}).get("error"))
                                             for r in records),
            "seconds": round(time.perf_counter() - start, 2), **llm_calls_of(store.shard(STAGE)).as_fields(),
        }
        store.write_json("results_summary.json", summary)
    return summary


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``results.jsonl`` shard (a torn last line is skipped)."""
    from agentcritic.store import iter_shard

    return [rec for _, rec in iter_shard(path)]
