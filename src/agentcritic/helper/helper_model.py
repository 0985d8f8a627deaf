"""The helper model: (state text, step, budget left) → P(ask) (selfreg.md Phase 3).

Two backbones:

- ``minilm`` (default): :class:`HelperClassifier`, the reward models' machinery
  (:class:`~agentcritic.rm.scoring_model.ScoringModel`: a ``*ForSequenceClassification`` with one
  logit, token-aware truncation, length-sorted scoring) with a binary head read through a sigmoid —
  fast on CPU.
- ``smollm2-lora``: :class:`HelperLM`, SmolLM2 (or any causal LM folder) with LoRA adapters (peft),
  trained the paper's "SFT helper" way: the prompt ends in ``Answer (ask or continue):`` and the
  loss is the language-model loss of the right answer's token. P(ask) is the softmax over the two
  answers' next-token log-probabilities.

:class:`Helper` wraps either with the decision threshold and the largest budget the labels covered,
and answers the Gate's ``ask(state, step, budget_left)``. A trained helper folder holds
``helper.json`` and ``model/``; :func:`load_helper` reads it back.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.rm.backbone import BackboneError, LoraSettings, apply_lora, is_peft, load_tokenizer
from agentcritic.rm.scoring_model import (
    SETTINGS_FILE,
    Feature,
    ModelFolderError,
    ScoringModel,
    TextSettings,
    model_folder,
    read_settings,
)
from agentcritic.store import atomic_write

HELPER_FILE = "helper.json"
LM_PROMPT = "Decide whether the agent should ask for help at this step.\n{text}\nAnswer (ask or continue):"
ANSWERS = (" continue", " ask")  # index = label: 0 continue, 1 ask
SMOLLM2_ALIASES = ("smollm2", "smollm2-lora", "smollm2-135m", "smollm2-135m-instruct")


def helper_text(
    state_text: str, step: int, budget_left: float, actor: str | None = None, offered: Sequence[str] = ()
) -> str:
    """The helper's input: the state the agent sees, then the step and the budget left; with several
    interventions also those offered and the one the question is about ("ask this one here?")."""
    b = "unlimited" if math.isinf(budget_left) else str(int(budget_left))
    text = f"{state_text}\nStep: {int(step)}\nBudget left: {b}"
    if actor is not None:
        text += f"\nOffered: {', '.join(offered) or actor}\nAsk: {actor}"
    return text


@dataclass
class HelperExample:
    """One labelled decision: the DP says ask (1) or continue (0) at this state and budget left.

    With several interventions an example is about one ``actor`` among those ``offered``: 1 when the
    DP, restricted to ``offered``, asks that one here (so one model scores every actor and every offer).
    """

    state_text: str
    step: int
    budget_left: int
    label: int
    task_id: str = ""
    actor: str | None = None
    offered: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return helper_text(self.state_text, self.step, self.budget_left, self.actor, self.offered)


# ----------------------------------------------------------------------------------- minilm
class HelperClassifier(ScoringModel):
    """Encoder + binary head: P(ask | helper text). ``score`` returns probabilities."""

    kind = "helper"
    problem_type = "multi_label_classification"  # one label, BCE-with-logits in HF's head

    def encode(self, texts: Sequence[str]) -> list[Feature]:
        return self.encode_texts([(None, t) for t in texts])

    def _transform(self, logits: Any) -> Any:
        return logits.sigmoid()

    def score(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """P(ask) for each helper text (see :func:`helper_text`), in input order."""
        return self.score_features(self.encode(texts), batch_size=batch_size)


# ----------------------------------------------------------------------------------- smollm2-lora
def resolve_lm(name: str | os.PathLike[str]) -> Path:
    """``smollm2`` → the embedded SmolLM2-135M-Instruct folder (de-quantised once); else a local folder."""
    if str(name).lower() in SMOLLM2_ALIASES:
        from agentcritic.llm.hf import materialize_gguf, smollm2_gguf_path

        return Path(materialize_gguf(smollm2_gguf_path()))
    path = Path(name).expanduser()
    if not (path / "config.json").exists():
        raise BackboneError(
            f"backbone {str(name)!r} is not a local Hugging Face model folder (no config.json there); "
            "use 'smollm2-lora' for the embedded SmolLM2, or a folder saved with save_pretrained"
        )
    return path


def _answer_ids(tokenizer: Any) -> list[int]:
    ids = []
    for answer in ANSWERS:
        toks = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not toks:
            raise BackboneError(f"the tokenizer turns {answer!r} into no tokens")
        ids.append(int(toks[0]))
    if ids[0] == ids[1]:
        raise BackboneError(f"the answers {ANSWERS} start with the same token; this tokenizer cannot tell them apart")
    return ids


def _answer_scorer_class() -> type:
    import torch
    from torch import nn

    class AnswerScorer(nn.Module):
        """``forward(input_ids, attention_mask) -> (B, 2)`` next-token log-probs of [continue, ask]
        after each row's last real token (right padding); the LM head runs on those positions only."""

        def __init__(self, model: Any, answer_ids: list[int]) -> None:
            super().__init__()
            self.model = model
            self.answer_ids = list(answer_ids)

        def forward(self, input_ids: Any, attention_mask: Any, **_: Any) -> Any:
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            last = attention_mask.sum(dim=1) - 1
            h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            logits = base.get_output_embeddings()(h).float()
            return torch.log_softmax(logits, dim=-1)[:, self.answer_ids]

    return AnswerScorer


class HelperLM(ScoringModel):
    """A causal LM with LoRA answering ``ask`` or ``continue``; ``score`` returns P(ask)."""

    kind = "helper-lm"

    def __init__(  # noqa: D107 - documented on the class
        self,
        backbone: str | os.PathLike[str] = "smollm2",
        *,
        max_length: int = 256,
        lora: LoraSettings | dict[str, Any] | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from agentcritic.rm.backbone import _quiet_transformers, is_encoder

        path = resolve_lm(backbone)
        from transformers import AutoConfig

        if is_encoder(AutoConfig.from_pretrained(str(path))):
            raise BackboneError(f"{path} is an encoder; the LoRA SFT helper needs a causal LM (use backbone='minilm')")
        tokenizer = load_tokenizer(path)
        torch.manual_seed(seed)
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(str(path))
        lora = LoraSettings(r=16, alpha=32) if lora is None else lora
        model = apply_lora(model, lora, task="CAUSAL_LM")
        self._base_name = str(backbone)
        self._base_path = path
        self.answer_ids = _answer_ids(tokenizer)
        self._setup(
            model,
            tokenizer,
            TextSettings(max_length=int(max_length), pair_input=False),
            {"backbone": str(backbone), "encoder": False, "pooling": "last", "lora": _lora_dict(lora)},
        )
        if device is not None:
            self.to(device)

    @property
    def scorer(self) -> Any:
        cached = getattr(self, "_scorer", None)
        if cached is None or cached.model is not self.model:
            cached = self._scorer = _answer_scorer_class()(self.model, self.answer_ids)
        return cached

    def logits(self, batch: dict[str, Any], scorer: Any = None) -> Any:
        """log p(ask) − log p(continue): the log-odds of asking (the trainers' per-row logit)."""
        lp = (scorer or self.scorer)(**batch)
        return lp[:, 1] - lp[:, 0]

    def _transform(self, logits: Any) -> Any:
        return logits.sigmoid()

    def encode(self, texts: Sequence[str]) -> list[Feature]:
        """Prompt ids (BOS if the tokenizer adds one); long states keep their start and last steps."""
        tok, limit = self.tokenizer, self.settings.max_length
        prompts = [LM_PROMPT.format(text=t) for t in texts]
        enc = tok(prompts, verbose=False)["input_ids"]
        over = [i for i, ids in enumerate(enc) if len(ids) > limit]
        if over:
            frame = len(tok(LM_PROMPT.format(text=""), verbose=False)["input_ids"]) + 2
            bodies = self.fitter.fit_bodies([texts[i] for i in over], [max(1, limit - frame)] * len(over))
            cut = tok([LM_PROMPT.format(text=b) for b in bodies], verbose=False)["input_ids"]
            for i, ids in zip(over, cut, strict=True):
                enc[i] = ids[-limit:] if len(ids) > limit else ids
        return [{"input_ids": list(ids)} for ids in enc]

    def score(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """P(ask) = softmax over the two answers' next-token log-probs, for each helper text."""
        return self.score_features(self.encode(texts), batch_size=batch_size)

    # -------------------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write the LoRA adapter (peft format) + tokenizer + settings; the base model is referenced."""
        from agentcritic.rm.backbone import _quiet_transformers
        from agentcritic.store import package_versions

        doc = {
            "format_version": 1,
            "kind": self.kind,
            "text": asdict(self.settings),
            "base": self._base_name if self._base_name.lower() in SMOLLM2_ALIASES else str(self._base_path),
            "answers": list(ANSWERS),
            "answer_ids": self.answer_ids,
            "lora": self.info.get("lora"),
            "versions": package_versions(("agentcritic", "torch", "transformers", "peft")),
        }
        with model_folder(directory) as tmp, _quiet_transformers():
            self.model.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
            atomic_write(tmp / SETTINGS_FILE, json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return Path(directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], *, device: str | None = None, **_: Any) -> HelperLM:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from agentcritic.rm.backbone import _quiet_transformers

        path = Path(directory)
        doc = read_settings(path)
        if doc.get("kind") != cls.kind:
            raise ModelFolderError(f"{path} holds a {doc.get('kind')!r} model, not a {cls.kind!r} one")
        base_path = resolve_lm(doc["base"])
        with _quiet_transformers():
            base = AutoModelForCausalLM.from_pretrained(str(base_path))
            model = PeftModel.from_pretrained(base, str(path))
        self = cls.__new__(cls)
        self._base_name, self._base_path = str(doc["base"]), base_path
        tokenizer = load_tokenizer(path)
        self.answer_ids = [int(i) for i in doc.get("answer_ids") or _answer_ids(tokenizer)]
        settings = TextSettings.from_dict(doc.get("text", {}))
        self._setup(model, tokenizer, settings, {"backbone": doc["base"], "lora": doc.get("lora")})
        if device is not None:
            self.to(device)
        return self

    def __repr__(self) -> str:
        lora = " +LoRA" if is_peft(self.model) else ""
        return f"HelperLM(base={self._base_name!r}{lora}, max_length={self.settings.max_length})"


def _lora_dict(lora: LoraSettings | dict[str, Any]) -> dict[str, Any]:
    return lora.to_dict() if isinstance(lora, LoraSettings) else dict(lora)


# ----------------------------------------------------------------------------------- the decider
class HelperCostError(AgentCriticError, ValueError):
    """A helper used under another cost table than the one its labels were solved with."""


class HelperViewError(AgentCriticError, ValueError):
    """A helper that reads states through one env's view, used on another env."""


def state_view(env: str | None) -> Callable[[str], str]:
    """What a helper reads of a state text: the env's ``helper_view`` (``view = "env"``), or the text."""
    if env is None:
        return _as_is
    from agentcritic.envs.registry import env_class

    return env_class(env).helper_view


def _as_is(text: str) -> str:
    return text


def same_costs(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    """Whether two cost tables (actor → cost, 1 when absent) price every actor the same."""
    a, b = dict(a or {}), dict(b or {})
    return all(float(a.get(k, 1.0)) == float(b.get(k, 1.0)) for k in set(a) | set(b))


class Helper:
    """A trained helper as a decider: ``ask(state, step, budget_left) -> bool`` (wrap it in a Gate).

    ``max_budget`` is the largest budget left its labels covered; more left reads as that much.
    ``costs`` is the cost table (actor → cost of one request) its labels were solved under: the
    budget left it reads is in those units. With several actors in it the helper also chooses whom:
    :meth:`choose` scores each affordable offered actor and asks the best one when it passes the threshold.
    """

    name = "helper"

    def __init__(
        self,
        model: HelperClassifier | HelperLM,
        threshold: float = 0.5,
        max_budget: int = 5,
        costs: dict[str, float] | None = None,
        view_env: str | None = None,
    ) -> None:
        self.model = model
        self.threshold = float(threshold)
        self.max_budget = int(max_budget)
        self.costs = {str(k): float(v) for k, v in (costs or {}).items()}
        self.view_env = view_env
        self._view = state_view(view_env)
        self._cache: dict[str, float] = {}

    def check_env(self, env: str) -> None:
        """Refuse an env other than the one whose view of a state the helper was trained on."""
        if self.view_env is not None and self.view_env != env:
            raise HelperViewError(
                f"this helper reads states through the {self.view_env!r} env's helper_view (trained with "
                f"view = 'env' on {self.view_env} data) but is used on {env!r}; train a helper on {env!r} "
                "episodes, or one with view = 'state'"
            )

    def check_costs(self, costs: dict[str, float] | None) -> None:
        """Refuse a cost table other than the one the helper was trained under (1 where absent)."""
        if not same_costs(self.costs, costs):
            raise HelperCostError(
                f"this helper was trained under the cost table {self.costs or 'all 1'} (actor → cost of a "
                f"request) but is used under {dict(costs or {}) or 'all 1'}; its 'budget left' is in the "
                "training units, so train a helper under the new costs or evaluate with the old ones"
            )

    def text(self, state_text: str, step: int, budget_left: float, actor: str | None = None,
             offered: Sequence[str] = ()) -> str:
        return helper_text(self._view(state_text), step, min(budget_left, self.max_budget), actor, offered)

    @property
    def actors(self) -> list[str]:
        """The interventions it chooses among (in the table's order); one or none: a yes/no helper."""
        return sorted(self.costs)

    def prob_ask(self, items: Sequence[tuple], batch_size: int = 32) -> np.ndarray:
        """P(ask) for (state text, step, budget left[, actor, offered]) tuples."""
        texts = [self.text(*item) for item in items]
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            for t, p in zip(todo, self.model.score(todo, batch_size=batch_size), strict=True):
                self._cache[t] = float(p)
        return np.array([self._cache[t] for t in texts])

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        if budget_left <= 0:
            return False
        text = state if isinstance(state, str) else state.state_text
        if len(self.actors) > 1:
            return self.choose(state, step, budget_left) is not None
        return bool(self.prob_ask([(text, step, budget_left)])[0] > self.threshold)

    def choose(self, state: Any, step: int, budget_left: float, offered: Sequence[str] | None = None) -> str | None:
        """The offered actor (default: all) that fits in ``budget_left`` with the highest P(ask), if
        that passes the threshold; else None. A one-actor helper asks that actor (or its default name)."""
        if len(self.actors) <= 1:
            return (self.actors or ["intervention"])[0] if self.ask(state, step, budget_left) else None
        offer = list(offered) if offered is not None else self.actors
        unknown = [a for a in offer if a not in self.costs]
        if unknown:
            raise HelperCostError(f"actor(s) {unknown} were not among this helper's interventions {self.actors}")
        fits = [a for a in offer if self.costs[a] <= budget_left]
        if not fits:
            return None
        text = state if isinstance(state, str) else state.state_text
        probs = self.prob_ask([(text, step, budget_left, a, offer) for a in fits])
        best = int(np.argmax(probs))
        return fits[best] if probs[best] > self.threshold else None

    def offering(self, actors: Sequence[str]) -> OfferedHelper:
        """This helper asking only ``actors`` (e.g. one kind alone), as a decider for the Gate."""
        return OfferedHelper(self, tuple(actors))

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """``directory/model`` (the network) and ``directory/helper.json`` (threshold, max budget)."""
        out = Path(directory)
        self.model.save_pretrained(out / "model")
        write_helper_settings(out, self.model.kind, self.threshold, self.max_budget, costs=self.costs,
                              view_env=self.view_env)
        return out


class OfferedHelper:
    """A multi-intervention :class:`Helper` restricted to some of its actors (``Helper.offering``)."""

    name = "helper"

    def __init__(self, helper: Helper, offered: tuple[str, ...]) -> None:
        self.helper, self.offered = helper, offered

    def choose(self, state: Any, step: int, budget_left: float) -> str | None:
        return self.helper.choose(state, step, budget_left, self.offered)

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        return self.choose(state, step, budget_left) is not None


def write_helper_settings(directory: Path, kind: str, threshold: float, max_budget: int, **extra: Any) -> None:
    doc = {"kind": kind, "threshold": threshold, "max_budget": max_budget, "model": "model", **extra}
    atomic_write(Path(directory) / HELPER_FILE, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def load_helper(directory: str | os.PathLike[str], *, device: str | None = None) -> Helper:
    """Read a folder written by ``train_helper`` (or :meth:`Helper.save`)."""
    path = Path(directory)
    file = path / HELPER_FILE
    if not file.exists():
        raise ModelFolderError(
            f"{path}: no {HELPER_FILE}; not a trained helper (train one with `agentcritic train-helper`)"
        )
    try:
        doc = json.loads(file.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{file}: invalid JSON ({exc})") from exc
    cls = {HelperClassifier.kind: HelperClassifier, HelperLM.kind: HelperLM}.get(doc.get("kind"))
    if cls is None:
        raise ModelFolderError(f"{file}: unknown helper kind {doc.get('kind')!r}")
    model = cls.from_pretrained(path / doc.get("model", "model"), device=device)
    return Helper(model, float(doc.get("threshold", 0.5)), int(doc.get("max_budget", 5)), doc.get("costs") or {},
                  view_env=doc.get("view_env"))
