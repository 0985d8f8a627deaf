"""The acting policy over a language model: ReAct-style prompting in two modes.

- ``choose``: the LM scores each admissible (or candidate) action as the continuation of the
  prompt; the agent samples from the softmax of those log-probabilities at ``temperature``
  (0 = argmax). The default for small local models, which rarely write a valid action unaided.
- ``generate``: the LM writes ``Thought: … Action: …`` and the action is parsed from it, as the
  papers drive large models. A reply with no parsable action is sent to the env as it is (first
  line), so it becomes the env's invalid-action step; it is counted, never a crash.
  With ``constrain=True`` and an env that offers its action grammar (``env.action_pattern()``), the
  reply is decoded under ``Thought: …\nAction: <that grammar>`` (:meth:`ReActAgent.reply_pattern`),
  so every reply parses to a well-formed action; the env still judges it. A backend that cannot
  constrain raises :class:`~agentcritic.llm.base.ConstraintUnsupported`.

Few-shot examples and reflections enter through the prompt, not through subclasses: the few-shot
example of an env is the env's own expert on its first training task, so every env (including
ones registered later) gets one without hand-written prompts.

Two prompt layouts (``layout``; by default the env's ``prompt_layout``, else ``flat``):

- ``flat``: one user message holds the episode so far, the example sits in the system message.
- ``turns``: every observation is a user turn and every action an assistant turn, the example
  episode first. A small chat model follows the action pattern of turns it "wrote" itself far
  better than a transcript inside one message (SmolLM2-135M on household: 28 of 54 expert moves
  matched, against 16 flat; BENCHMARKS.md, household).
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

from agentcritic.agents.base import AgentError, derive_seed
from agentcritic.envs.base import TextEnv
from agentcritic.llm.base import generate_with_pattern
from agentcritic.types import Trajectory

MODES = ("choose", "generate")
LAYOUTS = ("flat", "turns")
ACTION_RE = re.compile(r"Action\s*:\s*(.+)", re.IGNORECASE)
#: a constrained reply's thought: one line, no ':' (so the action is the only "Action:" to parse) and
#: no '"' or backslash (which break the JSON a JSON-schema backend decodes into)
THOUGHT_PATTERN = '[^\\n":\\\\]{0,100}'
#: the least ``max_tokens`` of a constrained reply: room for a thought of 100 one-character tokens
#: (SmolLM2 writes "10 10 10 …" digit by digit) and a step, so no reply is cut before it parses; the
#: reply ends where its pattern does, so the budget costs nothing otherwise
CONSTRAINED_MIN_TOKENS = 256

# (env name, its constructor arguments, max_steps) -> (instruction, first observation, [(action, observation)])
_FEW_SHOT_CACHE: dict[tuple[str, str, int], tuple[str, str, list[tuple[str, str]]]] = {}


def expert_episode(env: TextEnv, max_steps: int = 8) -> tuple[str, str, list[tuple[str, str]]]:
    """The env's expert on its first training task: (instruction, first observation, steps)."""
    task = env.task_ids("train")[0]
    # The knobs are part of the key: the same task under other knobs is another episode.
    key = (env.name, repr(sorted(env._init_kwargs.items())), max_steps)
    if key in _FEW_SHOT_CACHE:
        return _FEW_SHOT_CACHE[key]
    saved = env.snapshot() if env.task_id is not None else None
    first, info = env.reset(task_id=task, seed=0)
    steps = []
    for _ in range(max_steps):
        action = env.expert_action()
        if action is None:
            break
        obs, _, terminated, truncated, _ = env.step(action)
        steps.append((action, obs))
        if terminated or truncated:
            break
    if saved is not None:
        env.restore(saved)
    _FEW_SHOT_CACHE[key] = (info["instruction"], first, steps)
    return _FEW_SHOT_CACHE[key]


def expert_example(env: TextEnv, max_steps: int = 8) -> str:
    """A worked example for ``env``'s prompt: its expert on the first training task, as text."""
    instruction, first, steps = expert_episode(env, max_steps)
    lines = [f"Instruction: {instruction}", f"Observation: {first}"]
    for action, obs in steps:
        lines += [f"Action: {action}", f"Observation: {obs}"]
    return "\n".join(lines)


class ReActAgent:
    """An LLM policy. ``act(history, info)`` returns the next action; ``distribution`` the
    probabilities it draws from."""

    def __init__(
        self,
        lm: Any,
        mode: str = "choose",
        temperature: float = 0.0,
        few_shot: bool | str = True,
        max_tokens: int = 96,
        history_steps: int = 8,
        max_candidates: int | None = None,
        reflections: list[str] | None = None,
        seed: int = 0,
        name: str | None = None,
        layout: str | None = None,
        constrain: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes are {list(MODES)}")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; valid layouts are {list(LAYOUTS)} (or None: the env's)")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.lm = lm
        self.mode = mode
        self.temperature = float(temperature)
        self.few_shot = few_shot
        self.max_tokens = max_tokens
        self.history_steps = history_steps
        self.max_candidates = max_candidates
        self.reflections = list(reflections or [])
        self.base_seed = seed
        self.name = name or f"react-{mode}"
        self._rng = random.Random(seed)
        self._env: TextEnv | None = None
        self._example = ""
        self._example_turns: tuple[str, str, list[tuple[str, str]]] | None = None
        self.layout_arg = layout
        self.layout = layout or "flat"
        self.parse_failures = 0
        self.constrain = bool(constrain)

    # ------------------------------------------------------------------ episode
    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self._env = env
        self._rng = random.Random(derive_seed(self.base_seed, env.name, task_id, seed))
        self.parse_failures = 0
        self.layout = self.layout_arg or getattr(env, "prompt_layout", "flat")
        self._example, self._example_turns = "", None
        if self.few_shot is True:
            if self.layout == "turns":
                self._example_turns = expert_episode(env)
            else:
                self._example = expert_example(env)
        elif isinstance(self.few_shot, str):
            self._example = self.few_shot

    def stats(self) -> dict[str, Any]:
        out = {"parse_failures": self.parse_failures, "mode": self.mode, "temperature": self.temperature}
        return out | {"constrain": True} if self.constrain else out  # unconstrained records as before

    # ------------------------------------------------------------------ prompting
    def messages(self, history: Trajectory, info: dict[str, Any]) -> list[dict[str, str]]:
        system = [
            "You are an agent acting in a text environment. Read the instruction and the observations, "
            "then give the single next action."
        ]
        if self.mode == "generate":
            system.append("Answer in exactly this format:\nThought: <one short sentence>\nAction: <the action>")
        if self._example:
            system.append("Here is an example of a successful episode:\n" + self._example)
        if self.reflections:
            system.append(
                "Reflections from previous attempts:\n" + "\n".join(f"- {r}" for r in self.reflections)
            )
        if self.layout == "turns":
            return self._turns(system, history, info)
        user = [f"Instruction: {history.instruction}"]
        steps = history.steps
        if history.first_observation and len(steps) <= self.history_steps:
            user.append(f"Observation: {history.first_observation}")
        if len(steps) > self.history_steps:
            user.append(f"[{len(steps) - self.history_steps} earlier steps omitted]")
        for s in steps[-self.history_steps:]:
            user += [f"Action: {s.action}", f"Observation: {s.observation}"]
        if self.mode == "generate" and info.get("admissible_actions"):
            shown = info["admissible_actions"][:40]
            user.append("Some valid actions: " + "; ".join(shown))
        user.append("What is the next action?")
        return [{"role": "system", "content": "\n\n".join(system)}, {"role": "user", "content": "\n".join(user)}]

    def _turns(self, system: list[str], history: Trajectory, info: dict[str, Any]) -> list[dict[str, str]]:
        """The ``turns`` layout: observations as user turns, actions as assistant turns."""
        msgs = [{"role": "system", "content": "\n\n".join(system)}]
        if self._example_turns is not None:
            instruction, first, steps = self._example_turns
            msgs.append({"role": "user", "content": f"Instruction: {instruction}\nObservation: {first}"})
            for action, obs in steps:
                msgs += [{"role": "assistant", "content": f"Action: {action}"},
                         {"role": "user", "content": f"Observation: {obs}"}]
            msgs.append({"role": "assistant", "content": "Done."})  # the example episode is over
        steps = history.steps
        head = [f"Instruction: {history.instruction}"]
        if history.first_observation and len(steps) <= self.history_steps:
            head.append(f"Observation: {history.first_observation}")
        if len(steps) > self.history_steps:
            head.append(f"[{len(steps) - self.history_steps} earlier steps omitted]")
        msgs.append({"role": "user", "content": "\n".join(head)})
        for s in steps[-self.history_steps:]:
            msgs += [{"role": "assistant", "content": f"Action: {s.action}"},
                     {"role": "user", "content": f"Observation: {s.observation}"}]
        if self.mode == "generate" and info.get("admissible_actions"):
            msgs[-1]["content"] += "\nSome valid actions: " + "; ".join(info["admissible_actions"][:40])
        return msgs

    def candidates(self, info: dict[str, Any]) -> list[str]:
        choices = info.get("admissible_actions")
        if not choices:
            raise AgentError("choose mode needs the env's admissible (or candidate) actions; none were given")
        choices = list(dict.fromkeys(choices))
        if self.max_candidates and len(choices) > self.max_candidates:
            choices = self._rng.sample(choices, self.max_candidates)
        return choices

    # ------------------------------------------------------------------ acting
    def distribution(self, history: Trajectory, info: dict[str, Any]) -> list[tuple[str, float]]:
        """(action, probability) pairs the next action is drawn from, most likely first."""
        if self.mode == "choose":
            choices = self.candidates(info)
            logps = self.lm.score(self.messages(history, info), [f"Action: {c}" for c in choices])
            probs = softmax(logps, self.temperature)
            return sorted(zip(choices, probs), key=lambda p: -p[1])
        texts = self._generate(history, info, n=1 if self.temperature == 0 else 5)
        counts: dict[str, int] = {}
        for text in texts:
            action = self.parse(text)
            counts[action] = counts.get(action, 0) + 1
        return sorted(((a, c / len(texts)) for a, c in counts.items()), key=lambda p: -p[1])

    def act(self, history: Trajectory, info: dict[str, Any]) -> str:
        if self.mode == "generate":
            return self.parse(self._generate(history, info, n=1)[0])
        dist = self.distribution(history, info)
        if self.temperature == 0:
            return dist[0][0]
        r, acc = self._rng.random(), 0.0
        for action, p in dist:
            acc += p
            if r <= acc:
                return action
        return dist[-1][0]

    def _generate(self, history: Trajectory, info: dict[str, Any], n: int) -> list[str]:
        """``n`` replies in generate mode, constrained to :meth:`reply_pattern` when asked and offered."""
        kwargs: dict[str, Any] = dict(n=n, temperature=self.temperature, max_tokens=self.max_tokens,
                                      stop=["\nObservation"], seed=self._rng.randrange(2**31))
        action_pattern = self._env.action_pattern() if self.constrain and self._env is not None else None
        if action_pattern is None:
            return self.lm.generate(self.messages(history, info), **kwargs)
        kwargs["max_tokens"] = max(self.max_tokens, CONSTRAINED_MIN_TOKENS)
        return generate_with_pattern(self.lm, self.messages(history, info), self.reply_pattern(action_pattern),
                                     **kwargs)

    def reply_pattern(self, action_pattern: str) -> str:
        """The regular expression a constrained reply matches: the format the prompt asks for, with the
        env's grammar of one action (``Thought: <one line>\\nAction: <action>``)."""
        return f"Thought: {THOUGHT_PATTERN}\nAction: (?:{action_pattern})"

    def parse(self, text: str) -> str:
        """The action in a ``Thought: … Action: …`` reply; unparsable text goes to the env as is."""
        match = ACTION_RE.search(text)
        if match:
            return match.group(1).strip().splitlines()[0].strip()
        self.parse_failures += 1
        first = text.strip().splitlines()[0].strip() if text.strip() else ""
        return first or "(no action)"


def softmax(logps: list[float], temperature: float) -> list[float]:
    """Probabilities from log-scores; temperature 0 puts all mass on the (first) argmax."""
    if not logps:
        return []
    if temperature == 0:
        best = max(range(len(logps)), key=lambda i: logps[i])
        return [1.0 if i == best else 0.0 for i in range(len(logps))]
    scaled = [x / temperature for x in logps]
    top = max(scaled)
    exps = [math.exp(x - top) for x in scaled]
    total = sum(exps)
    return [e / total for e in exps]

