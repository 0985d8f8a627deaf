"""Lazy package exports: a name is imported on first use, kept, and an unknown one is an AttributeError."""

from __future__ import annotations

import pytest

from agentcritic.lazy import lazy_exports


def test_a_lazy_export_is_imported_on_first_use_and_kept() -> None:
    namespace: dict[str, object] = {}
    names, getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math", "dumps": "json"}, namespace)
    assert names == ["dumps", "sqrt"]
    assert "sqrt" not in namespace and "sqrt" in dir_()
    import math

    assert getattr_("sqrt") is math.sqrt and namespace["sqrt"] is math.sqrt
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_the_rm_and_helper_packages_export_lazily() -> None:
    import agentcritic.helper as helper
    import agentcritic.rm as rm

    assert "RewardModel" in rm.__all__ and "RewardModel" in dir(rm)
    from agentcritic.rm.reward_config import RewardConfig

    assert rm.RewardConfig is RewardConfig
    with pytest.raises(AttributeError, match="module 'agentcritic.helper' has no attribute 'Nope'"):
        helper.Nope  # noqa: B018
