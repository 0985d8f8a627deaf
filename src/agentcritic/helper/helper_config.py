"""Configs of the self-regulation stages this package runs (interventions, ``collect``, ``train-prm``,
``eval-helper``) and the helper's training config, :class:`HelperConfig`, beside
:mod:`agentcritic.helper.helper_trainer` (TRL's pairing). Every field has a default that works and
one line of help; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from agentcritic.config import CONCURRENCY_FIELD, EnvFields, EnvName, PolicyFields, PolicyName, StageConfig
from agentcritic.rm.base_config import TrainerConfig
from agentcritic.rm.prm_config import PRMConfig

DEFAULT_P_GRID = [round(0.1 * i, 1) for i in range(11)]


class InterventionConfig(StageConfig):
    """Who acts when the agent asks: the env's expert, a model, or a search (planner) for that step."""

    kind: Literal["expert", "model", "search"] = Field("expert", description="expert | model | search")
    name: str | None = Field(None, description="actor tag logged on helped steps (default: the kind)")
    cost: float = Field(1.0, ge=0.0, description="cost of one request: budget units it spends")
    takeover: int = Field(1, ge=1, description="actions one request buys (1 = one-step help; k = k-step takeover)")
    policy: PolicyName = Field("smollm2", description="model/search: the policy (smollm2 | hf | openai | llamacpp | …)")
    mode: Literal["choose", "generate"] = Field("choose", description="model/search: score listed actions or write them")
    temperature: float = Field(0.0, ge=0.0, description="model/search: sampling temperature (search wants > 0)")
    few_shot: bool = Field(True, description="model/search: show the expert's episode on a training task")
    llm: dict[str, Any] = Field(default_factory=dict, description="model/search: backend kwargs (base_url, model, path)")
    seed: int = Field(0, description="model/search: seed of the intervening agent")
    planner: str = Field("best_of_n", description="search: planning method (best_of_n | mcts | reflexion | sampling)")
    planner_params: dict[str, Any] = Field(default_factory=dict, description="search: the planner's parameters")
    reward_model: str | None = Field(None, description="search: folder of a saved RewardModel (none: the env's reward)")

    @property
    def actor(self) -> str:
        """The actor tag its helped steps are logged with (the name, else the kind)."""
        return self.name or self.kind



class CollectConfig(EnvFields, PolicyFields, StageConfig):
    """``agentcritic collect``: rollouts that ask for help at random, at rates p over a grid."""

    #: settings a finished collect run may grow in its folder: its episodes are kept, the rest are played
    GROWABLE: ClassVar[frozenset[str]] = frozenset({"limit", "n", "sweep_asks"})

    env: EnvName = Field("household", description="registered env name (needs an expert for kind=expert)")
    policy: PolicyName = Field("smollm2", description="base policy: smollm2 | hf | openai | llamacpp | random | expert")
    intervention: InterventionConfig = Field(default_factory=InterventionConfig, description="who helps")
    interventions: list[InterventionConfig] = Field(
        default_factory=list,
        description="several interventions instead of `intervention` (each asked at random when asking; "
                    "a TOML config's [[interventions]] tables, each with its own name and cost)",
    )
    split: Literal["train", "dev", "test"] = Field("train", description="task split to collect on")
    limit: int | None = Field(None, ge=1, description="first N tasks of the split (all when unset)")
    p_grid: list[float] = Field(default_factory=lambda: list(DEFAULT_P_GRID), description="ask probabilities")
    n: int = Field(4, ge=1, description="rollouts per task and p (per task and ask set with schedule = sweep)")
    schedule: Literal["random", "sweep"] = Field(
        "random",
        description="when to ask: random (a coin with probability p at every step, over p_grid) or sweep "
                    "(every set of up to sweep_asks ask steps: the episodes a deterministic base needs for an "
                    "exact table, see selfreg.md)",
    )
    sweep_asks: int = Field(1, ge=1, le=3, description="schedule = sweep: the largest set of ask steps tried")
    seed: int = Field(0, description="base seed; each episode's seed derives from it, the task, p and the rollout")
    state_chars: int | None = Field(4000, ge=200, description="longest state text kept (start + last steps)")
    workers: int = Field(1, ge=1, description="parallel worker processes")
    concurrency: int = CONCURRENCY_FIELD
    executor: Literal["pool", "ray"] = Field("pool", description="local process pool or Ray")


    @field_validator("p_grid")
    @classmethod
    def _probabilities(cls, grid: list[float]) -> list[float]:
        if not grid:
            raise ValueError("p_grid is empty; give ask probabilities such as 0,0.5,1")
        bad = [p for p in grid if not 0.0 <= p <= 1.0]
        if bad:
            raise ValueError(f"ask probabilities must lie in [0, 1]; got {bad}")
        return sorted(set(float(p) for p in grid))

    @model_validator(mode="after")
    def _one_way_of_naming_interventions(self) -> CollectConfig:
        if self.interventions and self.intervention != InterventionConfig():
            raise ValueError(
                f"give either `intervention` ({self.intervention.actor!r}) or `interventions` "
                f"({[i.actor for i in self.interventions]}), not both; with several, list them all in `interventions`"
            )
        actors = [i.actor for i in self.interventions]
        twice = sorted({a for a in actors if actors.count(a) > 1})
        if twice:
            raise ValueError(
                f"interventions {actors}: the actor name(s) {twice} repeat; give each intervention its own "
                "`name` (the tag its helped steps are logged with, e.g. name = \"cheap\")"
            )
        return self

    @property
    def offered(self) -> list[InterventionConfig]:
        """The interventions this collection asks: ``interventions``, else the single ``intervention``."""
        return list(self.interventions) or [self.intervention]


class PRMTrainingConfig(PRMConfig):
    """The PRM trainer's settings with this stage's defaults (a setting given alone keeps the others)."""

    num_epochs: int = Field(2, ge=1, description="passes over the training examples")
    batch_size: int = Field(32, ge=1, description="examples per device per forward")


class TrainPRMConfig(StageConfig):
    """``agentcritic train-prm``: a process reward model on collected episodes (Monte-Carlo labels)."""

    data: str = Field(description="a collect run folder (or its episodes .jsonl file)")
    backbone: str = Field("minilm", description="minilm | a local HF folder (encoder or decoder)")
    max_length: int = Field(256, ge=16, description="tokens per input (the start and the last steps are kept)")
    average_by_state: bool = Field(False, description="label = mean success over episodes sharing (state key, h)")
    helped_actor: str = Field("intervention", description="actor tag of helped steps in the PRM input")
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="held-out share of the tasks (AUROC, calibration)")
    device: str | None = Field(None, description="torch device; None = CPU / Accelerate's choice")
    training: PRMTrainingConfig = Field(
        default_factory=PRMTrainingConfig, description="the PRM trainer's settings (epochs, batch size, learning rate …)"
    )


class EvalHelperConfig(StageConfig):
    """``agentcritic eval-helper``: every method × budget on held-out tasks, into a results table."""

    data: str = Field(description="the collect run folder of the training tasks (the table, τ and rates fit on it)")
    prm: str = Field(description="a train-prm run folder (or a saved PRM folder)")
    helper: str | None = Field(None, description="a train-helper run folder (its helper is one of the methods)")
    env: EnvName | None = Field(None, description="env (default: the one the data was collected on)")
    env_kwargs: dict[str, Any] | None = Field(None, description="env kwargs (default: those of the collection)")
    split: Literal["train", "dev", "test"] = Field("test", description="held-out split to evaluate on")
    limit: int | None = Field(None, ge=1, description="first N tasks of the split")
    helper_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="ask when the helper's P(ask) exceeds this (default: the threshold saved "
                                          "with the helper); choose it on the dev split, not on the test split")
    oracle: str | None = Field(
        None, description="a `collect --schedule sweep` run on the evaluated split: adds the fewest-asks oracle's "
                          "row (labelled oracle) and where it asks")
    budgets: list[float] = Field(default_factory=lambda: [0, 1, 2, 3, 5, float("inf")],
                                 description="budgets C (inf = no cap)")
    methods: list[str] = Field(
        default_factory=lambda: ["never", "always", "random", "prm_threshold", "prm_gain", "dp", "helper"],
        description="never | always | random | prm_threshold | prm_gain | dp | helper",
    )
    dp_on_train: bool = Field(True, description="also run the DP policy on the training tasks (predicted vs measured)")
    train_limit: int | None = Field(None, ge=1, description="training tasks for the DP's measured run (default: all logged)")
    state_key: Literal["auto", "prefix", "bins"] = Field(
        "auto", description="tabular state of the DP: bins (shared across tasks), prefix (per-task tree), or auto: "
                            "prefix for a sweep collection (exact there), bins otherwise"
    )
    n_min: int = Field(1, ge=1, description="visits of (s, h) below which the PRM gives the value")
    kappa: float = Field(0.0, ge=0.0, description="shrinkage of table values towards the PRM")
    samples: int = Field(1, ge=1, description="episodes per task and method (more for a stochastic policy)")
    seed: int = Field(0, description="base seed of the episodes and of the random baseline")
    helped_actor: str = Field("intervention", description="actor tag the PRM was trained with for helped steps")
    device: str | None = Field(None, description="torch device for the PRM and the helper")
    workers: int = Field(1, ge=1, description="parallel worker processes (each loads the policy, PRM and helper)")
    executor: Literal["pool", "ray"] = Field("pool", description="local process pool or Ray")

    _methods_known = field_validator("methods")(classmethod(lambda cls, v: _check_methods(v)))

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, values: list[float]) -> list[float]:
        bad = [b for b in values if not (b >= 0) or (b != float("inf") and b != int(b))]
        if bad or not values:
            raise ValueError(f"budgets must be whole numbers >= 0 or inf; got {bad or values}")
        return sorted(set(float(b) for b in values))


METHODS = ("never", "always", "random", "prm_threshold", "prm_gain", "dp", "helper")


def _check_methods(values: list[str]) -> list[str]:
    # ``method@actor``: the method asking only that intervention (several interventions collected)
    bad = [m for m in values if m.split("@", 1)[0] not in METHODS or m.endswith("@")]
    if bad or not values:
        raise ValueError(f"unknown method(s) {bad}; valid methods are {list(METHODS)} "
                         "(each optionally as method@actor: asking only that intervention)")
    return list(dict.fromkeys(values))


# ----------------------------------------------------------------------------------- the helper's trainer
class HelperLabelConfig(StageConfig):
    """The tabular model and DP whose decisions the helper learns."""

    state_key: Literal["auto", "prefix", "bins"] = Field(
        "auto", description="tabular state: bins (step, PRM bin, last actor; needs --prm), the exact per-task prefix "
                            "tree, or auto: prefix for a sweep collection, bins otherwise"
    )
    n_min: int = Field(1, ge=1, description="visits of (s, h) below which the PRM gives its value")
    kappa: float = Field(0.0, ge=0.0, description="shrinkage of table values towards the PRM (0 = none)")
    n_bins: int = Field(10, ge=1, description="PRM-score bins of the 'bins' state key")
    budget: int = Field(5, ge=1, description="largest budget left the labels cover (b = 1 … budget)")
    policy: Literal["budget", "lagrangian"] = Field(
        "budget", description="exact budgeted DP π*(s, b), or the Lagrangian π_λ at λ meeting the budget"
    )
    lagrangian_usage: float = Field(1.0, gt=0, description="'lagrangian' labels: mean interventions per episode")
    reachable_only: bool = Field(False, description="label only (s, b) reachable from the start under π*")
    logged_only: bool = Field(
        False, description="label only the states where both asking and not asking were logged (a sweep logs both "
                           "at every state its deterministic base reaches): no label that a PRM fallback decided")
    ties: Literal["later", "now", "frugal"] = Field(
        "later", description="'budget' labels, where asking now is worth as much as a later ask: later (π* itself, "
                             "only the last such step says ask), now (every step and kind where asking is optimal and "
                             "beats never asking; see dp.ask_now_actions) or frugal (now, but only where asking spends "
                             "no more expected cost than waiting or than another kind as good: no 'ask' for budget to "
                             "spare, and the cheaper of two equal kinds)")
    costs: dict[str, float] = Field(
        default_factory=dict,
        description="actor → cost of one request, the budget's units (default: the collection's intervention; else 1)",
    )
    takeovers: dict[str, int] = Field(
        default_factory=dict, description="actor → actions one request buys (default: the collection's intervention)"
    )


class HelperConfig(TrainerConfig):
    """The helper classifier: state text + step + budget left → ask / continue."""

    backbone: str = Field(
        "minilm", description="minilm | smollm2-lora | a local HF folder (encoder: classifier, decoder: LoRA SFT)"
    )
    max_length: int | None = Field(256, ge=8, description="tokens per input (the start and the last steps are kept)")
    view: Literal["state", "env"] = Field(
        "state", description="what the helper reads of a state: state (the text the agent sees) or env (the env's "
                             "helper_view of it: household keeps the last action and what the agent knows, rooms "
                             "and things named by role, so what it learns carries over to new tasks)")
    learning_rate: float = Field(5e-5, gt=0, description="peak AdamW learning rate (LoRA: try 2e-4)")
    num_epochs: int = Field(3, ge=1, description="passes over the training examples")
    balance: Literal["weight", "resample", "none"] = Field(
        "weight", description="class imbalance: weight the loss by inverse frequency, resample asks, or nothing"
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="ask when P(ask) exceeds this")
    eval_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="held-out share of the tasks")
    lora_r: int = Field(16, ge=1, description="LoRA rank (smollm2-lora and other decoders)")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling alpha")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="LoRA dropout")
    labels: HelperLabelConfig = Field(default_factory=HelperLabelConfig, description="the DP the labels come from")


def recorded_collection(data: str | Path, *, required: bool = False) -> CollectConfig | None:
    """The settings of the collect run that wrote ``data`` (a run folder or its episodes file); None
    for episodes that no collect run recorded (a hand-made JSONL file), or, when ``required``, the
    store's error that says which folder to give."""
    from agentcritic.stage import recorded_stage
    from agentcritic.store import StoreError

    root = Path(data)
    try:
        return CollectConfig.model_validate(recorded_stage(root if root.is_dir() else root.parent, "collect"))
    except StoreError:
        if required:
            raise
        return None


def resolve_state_key(state_key: str, data: str | Path) -> Literal["prefix", "bins"]:
    """``auto`` → ``prefix`` for a sweep collection (both branches logged at every state its
    deterministic base reaches: the per-task tree is exact) and ``bins`` otherwise; others as given."""
    if state_key != "auto":
        return state_key  # type: ignore[return-value]
    collection = recorded_collection(data)
    return "prefix" if collection is not None and collection.schedule == "sweep" else "bins"
