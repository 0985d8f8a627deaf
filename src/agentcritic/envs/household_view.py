"""The household state as a helper that pools across tasks reads it (``HouseholdEnv.helper_view``).

Whether help pays now depends, in household, on what the agent knows at this step — its room, what
it holds, where the object or the goal is (the last line of every observation) — and on what it
just did. The names differ from task to task, and a small classifier trained on a few dozen tasks
does not learn that "You are in the hallway … The coat rack is in the hallway" and "You are in the
office … The desk is in the office" are the same situation (measured in BENCHMARKS.md, issue 17:
the state where the agent stands in the goal's room holding the object is the one a single ask
rescues, in every task). The view keeps:

- the instruction;
- the last action (``none`` before the first);
- the last observation: its event line and the line of what the agent knows,

and names each room "room A", "room B" … in order of first mention in the view, each object
"object 1" …, and each receptacle "receptacle 1" …. Only the text the agent was shown is read,
never the true state. (A variant with the last three actions, the agent's room always "room A", did
no better on the dev split: BENCHMARKS.md, issue 17.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

STATE_LINE = "You are in the "
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class RoleView:
    """The view over a vocabulary: ``kinds`` maps each name (room, receptacle, object) to its kind."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self.kinds = {name.lower(): kind for name, kind in kinds.items()}
        alternatives = "|".join(re.escape(n) for n in sorted(self.kinds, key=len, reverse=True))
        self.pattern = re.compile(rf"\b(?:the )?({alternatives})\b", re.IGNORECASE)

    def by_role(self, text: str) -> str:
        """``text`` with every room, receptacle and object named by its kind and order of first mention."""
        seen: dict[str, str] = {}
        counts: dict[str, int] = {}

        def name(match: re.Match[str]) -> str:
            word = match.group(1).lower()
            if word not in seen:
                kind = self.kinds[word]
                k = counts.get(kind, 0)
                counts[kind] = k + 1
                seen[word] = f"room {_LETTERS[k % 26]}" if kind == "room" else f"{kind} {k + 1}"
            return seen[word]

        return self.pattern.sub(name, text)

    def __call__(self, state_text: str) -> str:
        """The instruction, the last action and the last observation's event and state lines, by role."""
        lines = [line.strip() for line in state_text.splitlines() if line.strip()]
        instruction = next((line for line in lines if line.startswith("Instruction:")), "")
        action = next((line[len("Action:"):].strip() for line in reversed(lines) if line.startswith("Action:")), "none")
        state_at = next((i for i in range(len(lines) - 1, -1, -1) if STATE_LINE in lines[i]), None)
        if state_at is None:  # not a household state: nothing to pick out
            return self.by_role(state_text)
        state = lines[state_at][lines[state_at].index(STATE_LINE):]
        event = ""
        if state_at > 0 and not lines[state_at - 1].startswith(("- ", "Action:", "Instruction:")):
            event = lines[state_at - 1].removeprefix("Observation:").strip()
            event = re.sub(r"\s*You see: [^.]*\.", "", event)  # the room's furniture: the same in every visit
        parts = [instruction, f"Last action: {action}", *([f"Then: {event}"] if event else []), state]
        return self.by_role("\n".join(p for p in parts if p))
