from __future__ import annotations

import json
import os

import pytest

from agentcritic.store import RunStore, Shard, StoreError, atomic_write, iter_shard


def test_shard_appends_durably_and_never_twice(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    with Shard(path) as shard:
        assert shard.append("a", {"x": 1})
        assert shard.append("b", {"x": 2})
        assert not shard.append("a", {"x": 99}), "a key already written must not be written again"
    with Shard(path) as shard:
        assert shard.keys == {"a", "b"} and len(shard) == 2
        assert not shard.append("b", {"x": 3})
    assert dict(iter_shard(path)) == {"a": {"x": 1}, "b": {"x": 2}}
    assert len(path.read_text().splitlines()) == 2


def test_torn_last_line_is_discarded_on_reopen(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    with Shard(path) as shard:
        shard.append("a", {"x": 1})
    with open(path, "ab") as f:
        f.write(b'{"key": "b", "record": {"x"')  # a crash mid-write
    assert dict(iter_shard(path)) == {"a": {"x": 1}}, "readers skip the torn tail"
    with Shard(path) as shard:
        assert shard.keys == {"a"}
        assert shard.append("b", {"x": 2}), "the torn record is redone"
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]


def test_corrupt_middle_line_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"key": "a", "record": {}}\nGARBAGE\n{"key": "c", "record": {}}\n')
    with pytest.raises(StoreError, match=r"s\.jsonl:2"):
        Shard(path)


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "m.json"
    atomic_write(target, "old")
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["m.json"]


def test_run_store_resumes_same_config_and_refuses_another(tmp_path) -> None:
    cfg = {"rollout": {"env": "game24", "limit": 3, "nothing": None}}
    with RunStore(tmp_path / "run", config=cfg) as store:
        store.shard("rollouts").append("k", {"v": 1})
        store.mark_done("rollouts", episodes=1)
    with RunStore(tmp_path / "run", config=cfg) as store:
        assert store.is_done("rollouts")
        assert dict(store.records("rollouts")) == {"k": {"v": 1}}
        assert store.config()["run"]["versions"]["agentcritic"]
    with pytest.raises(StoreError, match="another config.*rollout"):
        RunStore(tmp_path / "run", config={"rollout": {"env": "shop"}})
