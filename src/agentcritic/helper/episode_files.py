"""Reading collected episodes: a collect run folder or a JSONL file of episodes (``read_episodes``)."""

from __future__ import annotations

import json
from pathlib import Path

from agentcritic.errors import AgentCriticError
from agentcritic.helper.tabular import Episode, TabularError, as_episode
from agentcritic.types import RecordError


class EpisodeDataError(AgentCriticError, ValueError):
    """An episodes file that cannot be read; the message names the file and line."""


def read_episodes(path: str | Path) -> list[Episode]:
    """Episodes from a collect run folder or a JSONL file.

    Each line is an episode ``{"transitions": [Transition, ...], "success": bool}``, either bare or
    as a store record ``{"key": ..., "record": {...}}``. A folder is read through its ``*.jsonl``
    files whose records hold ``transitions`` (other shards are skipped); a torn last line is skipped,
    and so is a sweep's record of a repeated episode (``repeat_of``).
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(root.glob("*.jsonl"))
    elif root.exists():
        files = [root]
    else:
        raise EpisodeDataError(f"{root}: no such file or folder (give the collect run folder)")
    episodes: list[Episode] = []
    for file in files:
        episodes.extend(_read_episode_file(file, skip_other=root.is_dir()))
    if not episodes:
        raise EpisodeDataError(f"{root}: no episodes found (expected JSONL lines with a 'transitions' list)")
    return episodes


def _read_episode_file(file: Path, skip_other: bool) -> list[Episode]:
    out: list[Episode] = []
    with open(file, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                break  # torn tail of a run still in progress (or killed)
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise EpisodeDataError(f"{file}:{lineno}: invalid JSON ({exc})") from exc
            rec = row.get("record", row) if isinstance(row, dict) else row
            if isinstance(rec, dict) and rec.get("repeat_of"):
                continue  # a sweep's ask set that repeats a smaller set's episode (agentcritic.helper.collect)
            if not isinstance(rec, dict) or "transitions" not in rec:
                if skip_other and lineno == 1:
                    return []  # another kind of shard in the run folder
                raise EpisodeDataError(f"{file}:{lineno}: not an episode (no 'transitions' list)")
            try:
                out.append(as_episode(rec, lineno))
            except (TabularError, RecordError) as exc:
                raise EpisodeDataError(f"{file}:{lineno}: {exc}") from exc
    return out
