"""HFLM's dtype option: bfloat16 scores like the float32 reference, the load-time probe, bad values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from agentcritic import llm
from agentcritic.llm import hf

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import make_tiny_llama  # noqa: E402

MSGS = [{"role": "system", "content": "You are in the kitchen. There is a fridge and a door."},
        {"role": "user", "content": "Observation: the door is closed.\nWhat is the next action?"}]
CANDS = ["Action: go north", "Action: open fridge", "Action: take apple from the table", "Action: look", "x"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def reference(tiny_dir: Path):
    return llm.load("hf", path=tiny_dir, threads=1)


@pytest.fixture(scope="module")
def fast(tiny_dir: Path):
    return llm.load("hf", path=tiny_dir, threads=1, dtype="bfloat16")


def test_float32_is_the_default_and_runs_no_probe(reference) -> None:
    assert reference.dtype == "float32" and reference.model.dtype == torch.float32
    assert reference.probe_drift == 0.0
    assert not any(isinstance(m, hf._PackedLinear) for m in reference.model.modules())


def test_bfloat16_scores_within_the_tolerance_of_float32_and_picks_the_same(reference, fast) -> None:
    assert fast.dtype == "bfloat16"
    assert 0.0 < fast.probe_drift <= hf.PROBE_TOLERANCE
    assert fast.usage.calls == 0  # the probe is not counted as the caller's usage
    lists = [CANDS, CANDS[:3], ["Action: look", "Action: go north", "Observation: banana"]]
    for cands in lists:
        want, got = reference.score(MSGS, cands), fast.score(MSGS, cands)
        assert max(abs(a - b) for a, b in zip(got, want)) <= hf.PROBE_TOLERANCE
        assert got.index(max(got)) == want.index(max(want))


def test_packed_bfloat16_layers_give_the_plain_bfloat16_numbers(tiny_dir: Path, fast) -> None:
    if not fast.packed_linears:
        pytest.skip("this torch has no oneDNN weight packing")
    assert fast.packed_linears == sum(isinstance(m, hf._PackedLinear) for m in fast.model.modules())
    plain = llm.load("hf", path=tiny_dir, threads=1)
    plain.model.to(torch.bfloat16)
    assert max(abs(a - b) for a, b in zip(fast.score(MSGS, CANDS), plain.score(MSGS, CANDS))) < 1e-6
    assert fast.generate(MSGS, max_tokens=8) == plain.generate(MSGS, max_tokens=8)


def test_a_drift_beyond_the_tolerance_is_an_error_naming_the_reference(tiny_dir: Path) -> None:
    with pytest.raises(hf.DtypeDriftError, match=r"dtype='float32' \(the reference backend") as err:
        llm.load("hf", path=tiny_dir, threads=1, dtype="bfloat16", probe_tolerance=1e-9)
    assert isinstance(err.value, llm.LLMError)
    assert "probe_tolerance=1e-09" in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_dtype_is_a_one_paragraph_options_error(tiny_dir: Path) -> None:
    with pytest.raises(llm.LLMOptionsError, match=r"got 'float16'") as err:
        llm.load("hf", path=tiny_dir, dtype="float16")
    text = str(err.value)
    assert all(f"'{d}'" in text for d in hf.DTYPES) and "\n" not in text


def test_auto_is_bfloat16_only_on_a_cpu_that_multiplies_it_natively(monkeypatch) -> None:
    monkeypatch.setattr(hf, "cpu_has_fast_bfloat16", lambda: True)
    assert hf.resolve_dtype("auto") == torch.bfloat16
    assert hf.resolve_dtype("auto", device="cuda") == torch.float32
    assert hf.resolve_dtype("float32") == torch.float32
    monkeypatch.setattr(hf, "cpu_has_fast_bfloat16", lambda: False)
    assert hf.resolve_dtype("auto") == torch.float32
    assert hf.resolve_dtype("bfloat16") == torch.bfloat16


# ---------------------------------------------------------------------- the real embedded model
@pytest.mark.slow
def test_smollm2_in_bfloat16_picks_the_float32_actions() -> None:
    ref = llm.load("smollm2", threads=1, dtype="float32")
    fast = llm.load("smollm2", threads=1, dtype="bfloat16")
    assert fast.probe_drift <= hf.PROBE_TOLERANCE
    lists = [
        (MSGS, ["go north", "open fridge", "open door", "take apple from the table", "look", "inventory"]),
        ([{"role": "user", "content": "Use 4 6 3 8 and + - * / to make 24. Next step?"}],
         ["4 + 6 = 10 (left: 10 3 8)", "8 * 3 = 24 (left: 24 4 6)", "6 - 4 = 2 (left: 2 3 8)"]),
        ([{"role": "user", "content": "Instruction: buy a red cotton shirt under 30 dollars. Page: search."}],
         ["search[red cotton shirt]", "click[back to search]", "click[buy now]"]),
    ]
    for msgs, cands in lists:
        want, got = ref.score(msgs, cands), fast.score(msgs, cands)
        assert max(abs(a - b) for a, b in zip(got, want)) <= 2 * hf.PROBE_TOLERANCE
        assert got.index(max(got)) == want.index(max(want))
