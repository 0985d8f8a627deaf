"""The hf/smollm2 backend: KV-reuse scoring equals naive scoring, generation, caching, loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agentcritic import llm
from agentcritic.llm.cache import LRUCache, build_folder_atomically, cache_root
from agentcritic.llm.hf import _common_prefix

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import make_tiny_llama  # noqa: E402

MSGS = [{"role": "system", "content": "You are in the kitchen. There is a fridge and a door."},
        {"role": "user", "content": "Observation: the door is closed.\nWhat is the next action?"}]
CANDS = ["Action: go north", "Action: open fridge", "Action: take apple from the table",
         "Action: look", "x", "Action: inventory please now", "Observation: banana"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def lm(tiny_dir: Path):
    return llm.load("hf", path=tiny_dir, threads=1)


def test_kv_reuse_score_equals_naive_forward_passes(lm) -> None:
    fast = lm.score(MSGS, CANDS)
    naive = lm.score_naive(MSGS, CANDS)
    assert len(fast) == len(CANDS)
    assert all(v < 0 for v in fast)
    assert max(abs(a - b) for a, b in zip(fast, naive)) < 1e-4
    # log p of a longer candidate is the shorter one's plus the extra tokens' (which are negative)
    assert lm.score(MSGS, ["Action: go north and then east"])[0] < lm.score(MSGS, ["Action: go north"])[0]


@pytest.mark.parametrize("kv_block", [4, 0])
def test_a_prompt_sharing_the_last_ones_head_reuses_its_kv_and_scores_the_same(tiny_dir: Path, kv_block: int) -> None:
    warm = llm.load("hf", path=tiny_dir, threads=1, kv_block=kv_block)
    cold = llm.load("hf", path=tiny_dir, threads=1, kv_block=kv_block)
    longer = MSGS[:1] + [{"role": "user", "content": MSGS[1]["content"] + "\nAction: look\nObservation: a room."}]
    shorter = MSGS[:1] + [{"role": "user", "content": "Observation: dark."}]
    warm.score(MSGS, CANDS)
    other_system = [{"role": "system", "content": "You are in the kitchen. A cat sleeps."}, MSGS[1]]
    for msgs in (longer, shorter, other_system):
        before = warm.prefix_tokens_reused
        got = warm.score(msgs, CANDS[:4])
        assert warm.prefix_tokens_reused > before  # the system turn was not run again
        cold.clear_cache()
        want = cold.score(msgs, CANDS[:4])
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
        assert max(abs(a - b) for a, b in zip(got, warm.score_naive(msgs, CANDS[:4]))) < 1e-4
    assert cold.prefix_tokens_reused == 0


@pytest.mark.parametrize("kv_block", [0, 8])
def test_a_warm_prompts_new_tokens_and_its_candidates_take_one_pass(tiny_dir: Path, monkeypatch, kv_block: int) -> None:
    longer = MSGS[:1] + [{"role": "user", "content": MSGS[1]["content"] + "\nAction: look\nObservation: a room."}]
    # kv_block=0: the 27 new prompt tokens run in one pass. Budget 4096: they and the whole tree take
    # that pass; budget 30: they and the first of two chunks, then the second; budget 3: they alone
    # (over the budget), then 3 chunks. kv_block=8: each whole block of 8 from the last whole block the
    # prompts share takes a pass of its own first, and the tail (1 to 8 tokens) rides with the tree.
    for budget, cands, passes in ((4096, CANDS[:4], 1), (30, TREE_CANDS, 2), (3, CANDS[:4], 4)):
        lm = llm.load("hf", path=tiny_dir, threads=1, score_batch_tokens=budget, kv_block=kv_block)
        lm.score(MSGS, CANDS)
        if kv_block:
            old, new = lm.encode(lm.render(MSGS)), lm.encode(lm.render(longer))
            shared = min(_common_prefix(old, new), len(old) - 1) // kv_block * kv_block
            passes += ((len(new) - 1) // kv_block * kv_block - shared) // kv_block
            passes -= budget == 3  # the tail is under this budget where the 27 new tokens were not
        calls: list[int] = []
        real = lm.model.forward
        monkeypatch.setattr(lm.model, "forward",
                            lambda *a, **kw: calls.append(kw["input_ids"].shape[1]) or real(*a, **kw))
        got = lm.score(longer, cands)
        assert len(calls) == passes and (not kv_block or calls[0] == kv_block)
        monkeypatch.undo()
        assert max(abs(a - b) for a, b in zip(got, lm.score_naive(longer, cands))) < 1e-4
        # the same prompt again, from its own cache, gives the same numbers
        lm.clear_cache(kv=False)
        assert max(abs(a - b) for a, b in zip(lm.score(longer, cands), got)) < 1e-4


def test_a_score_does_not_depend_on_what_was_scored_before(tiny_dir: Path) -> None:
    # In bfloat16 a token's KV depends on which tokens share its pass; with the prompt in fixed blocks
    # (every whole block alone, the tail with the candidates) a warm score is the cold one, bit for bit.
    prompts = [MSGS,
               MSGS[:1] + [{"role": "user", "content": MSGS[1]["content"] + "\nAction: look\nObservation: a room."}],
               MSGS[:1] + [{"role": "user", "content": MSGS[1]["content"] + "\nAction: look"}],
               [{"role": "system", "content": "You are in the kitchen. A cat sleeps."}, MSGS[1]]]
    warm = llm.load("hf", path=tiny_dir, threads=1, dtype="bfloat16", probe_tolerance=float("inf"), kv_block=8)
    cold = llm.load("hf", path=tiny_dir, threads=1, dtype="bfloat16", probe_tolerance=float("inf"), kv_block=8)
    for order in ([0, 1, 2, 3, 1, 0], [3, 2, 1, 0, 2, 3]):
        for i in order:
            warm.clear_cache(kv=False)  # the score cache, not the KV: the point is the KV's history
            cold.clear_cache()
            assert warm.score(prompts[i], TREE_CANDS) == cold.score(prompts[i], TREE_CANDS)
    assert warm.prefix_tokens_reused > 0 and cold.prefix_tokens_reused == 0
    for bad in (-1, "64", 1.5):
        with pytest.raises(llm.LLMOptionsError, match="kv_block must be 0"):
            llm.load("hf", path=tiny_dir, kv_block=bad)


def test_candidates_tokenised_after_the_prompts_last_special_token_match_the_whole_text(lm) -> None:
    prompt = lm.render(MSGS)
    conts = ["Action: go north", "th", " x", "\n<|im_end|>", "Observation: banana", "ö"]
    assert lm._encode_after(prompt, lm.encode(prompt), conts) == [lm.encode(prompt + c) for c in conts]


def test_score_in_several_chunks_equals_one_chunk(tiny_dir: Path) -> None:
    big = llm.load("hf", path=tiny_dir, score_batch_tokens=4096)
    want = big.score(MSGS, CANDS)
    for budget in (1, 3, 8):  # 1: every candidate its own pass (longer than the budget, still one pass)
        small = llm.load("hf", path=tiny_dir, score_batch_tokens=budget)
        assert max(abs(x - y) for x, y in zip(small.score(MSGS, CANDS), want)) < 1e-4


def _tree_passes(lm, monkeypatch) -> list[int]:
    """Record the number of tokens of each candidate-tree pass (calls with a 4D mask)."""
    seen: list[int] = []
    real = lm.model.forward

    def spy(*args, **kw):
        mask = kw.get("attention_mask")
        if mask is not None and mask.dim() == 4:
            seen.append(kw["input_ids"].shape[1])
        return real(*args, **kw)

    monkeypatch.setattr(lm.model, "forward", spy)
    return seen


# lengths in tokens under the tiny tokenizer: 1 ("x"), 3, 4, 4, 6, 9, 10, 12; four share "Action: go "
TREE_CANDS = ["x", "Action: look", "Action: go north", "Action: go south", "Action: open fridge",
              "Observation: banana", "Action: take apple from the table", "Action: inventory please now",
              "Action: go north and then east"]


def test_shared_prefix_tree_scores_equal_naive_for_any_lengths_and_chunks(tiny_dir: Path, monkeypatch) -> None:
    lm = llm.load("hf", path=tiny_dir, threads=1, score_batch_tokens=10, kv_block=8)
    prompt = lm.render(MSGS)
    n = len(lm.encode(prompt))
    lengths = [len(lm.encode(prompt + c)) - n for c in TREE_CANDS]
    assert lengths[0] == 1 and len(set(lengths)) > 4
    passes = _tree_passes(lm, monkeypatch)
    naive = lm.score_naive(MSGS, TREE_CANDS)
    got = lm.score(MSGS, TREE_CANDS)
    assert max(abs(a - b) for a, b in zip(got, naive)) < 1e-4
    # more than one chunk, each within the budget unless one candidate alone is longer
    assert len(passes) > 1 and all(k <= max(10, max(lengths) - 1) for k in passes)
    # the tree holds each candidate's tokens but the last, and a head shared by several runs once
    assert sum(passes) < sum(k - 1 for k in lengths)
    # the prompt's KV is cut back after every pass: the next call reuses it and gets the same numbers
    (key, cache), before = lm._prompt_kv, passes[:]
    assert cache.get_seq_length() == n and len(key) == n
    kv = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
    lm.clear_cache(kv=False)
    assert lm.score(MSGS, TREE_CANDS) == got
    assert len(passes) > len(before) and lm._prompt_kv[1] is cache and cache.get_seq_length() == n
    assert all(torch.equal(k, layer.keys) and torch.equal(v, layer.values)
               for (k, v), layer in zip(kv, cache.layers))


def test_one_token_candidates_need_no_pass_beyond_the_prompt(lm, monkeypatch) -> None:
    lm.clear_cache()
    passes = _tree_passes(lm, monkeypatch)
    got = lm.score(MSGS, ["x", "A"])
    assert passes == []
    assert max(abs(a - b) for a, b in zip(got, lm.score_naive(MSGS, ["x", "A"]))) < 1e-4


def test_eager_attention_takes_the_same_tree_mask(tiny_dir: Path) -> None:
    sdpa = llm.load("hf", path=tiny_dir, threads=1)
    eager = llm.load("hf", path=tiny_dir, threads=1)
    eager.model.set_attn_implementation("eager")
    assert eager.model.config._attn_implementation == "eager"
    a, b = sdpa.score(MSGS, TREE_CANDS), eager.score(MSGS, TREE_CANDS)
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4


def test_without_tree_attention_each_candidate_takes_a_full_pass(tiny_dir: Path, monkeypatch) -> None:
    # e.g. a model with sliding-window layers, whose cache a single custom mask cannot describe
    lm = llm.load("hf", path=tiny_dir, threads=1)
    monkeypatch.setattr(lm, "_tree_attention_ok", lambda past: False)
    passes = _tree_passes(lm, monkeypatch)
    got = lm.score(MSGS, TREE_CANDS)
    assert passes == []
    assert max(abs(a - b) for a, b in zip(got, lm.score_naive(MSGS, TREE_CANDS))) < 1e-4


def test_score_is_the_sum_of_the_candidate_token_logprobs(lm) -> None:
    prompt = lm.render(MSGS)
    cand = "Action: open fridge"
    entries = lm.text_logprobs(prompt + cand)
    n_prompt = len(lm.encode(prompt))
    expected = sum(lp for _, lp in entries[n_prompt:])
    assert lm.score(MSGS, [cand])[0] == pytest.approx(expected, abs=1e-4)


def test_boundary_merge_falls_back_to_the_naive_path(lm, monkeypatch) -> None:
    # "nor" + "th" tokenises as one token "north" in the joint text, so the prompt's tokens are not a
    # prefix of the joint tokens and the candidate must go through the naive path.
    prompt, cont = "Action: go nor", "th"
    p_ids, joint = lm.encode(prompt), lm.encode(prompt + cont)
    assert joint[: len(p_ids)] != p_ids, "the tokenizer should merge across this boundary"
    calls = []
    real = lm._score_naive
    monkeypatch.setattr(lm, "_score_naive", lambda ids, k: calls.append(k) or real(ids, k))
    got = lm.score_text(prompt, [cont, " fridge"])
    assert len(calls) == 1  # only the straddling candidate
    k = calls[0]
    entries = lm.text_logprobs(prompt + cont)
    assert got[0] == pytest.approx(sum(lp for _, lp in entries[k:]), abs=1e-4)


def test_empty_candidate_scores_zero_and_cache_hits_skip_the_model(lm) -> None:
    before = lm.usage
    first = lm.score(MSGS, ["", "Action: wait here"])
    mid = lm.usage
    again = lm.score(MSGS, ["Action: wait here", ""])
    after = lm.usage
    assert first[0] == 0.0 and again[1] == 0.0 and again[0] == first[1]
    assert (mid - before).calls == 1 and (mid - before).prompt_tokens > 0
    assert (after - mid).calls == 0 and (after - mid).prompt_tokens == 0


def test_plain_string_messages_are_one_user_message(lm) -> None:
    assert lm.score("hello there", ["Action: look"]) == lm.score([{"role": "user", "content": "hello there"}],
                                                                  ["Action: look"])


def test_plain_template_scores_the_candidate_after_assistant_colon(tiny_dir: Path) -> None:
    plain = llm.load("hf", path=tiny_dir, template="plain")
    assert plain.render(MSGS).endswith("\nAssistant:")
    got = plain.score(MSGS, ["Action: look"])
    assert got == pytest.approx(plain.score_text(plain.render(MSGS), [" Action: look"]), abs=1e-6)


def test_greedy_generation_is_deterministic_and_repeated_for_n(lm) -> None:
    a = lm.generate(MSGS, max_tokens=12)
    b = lm.generate(MSGS, n=3, max_tokens=12)
    assert len(a) == 1 and b == a * 3


def test_sampling_is_seeded(lm) -> None:
    a = lm.generate(MSGS, n=4, temperature=1.5, max_tokens=12, seed=7)
    b = lm.generate(MSGS, n=4, temperature=1.5, max_tokens=12, seed=7)
    c = lm.generate(MSGS, n=4, temperature=1.5, max_tokens=12, seed=8)
    assert a == b and len(a) == 4
    assert a != c
    assert len(set(a)) > 1  # the samples of one call differ from each other


def test_stop_strings_cut_the_output_and_max_tokens_bounds_it(lm) -> None:
    before = lm.usage
    full = lm.generate(MSGS, max_tokens=20)[0]
    spent = lm.usage - before
    assert spent.completion_tokens <= 20 and spent.calls == 1
    if len(full) < 6:
        pytest.skip("the random model stopped too early to test stop strings")
    stop = full[3:5]
    cut = lm.generate(MSGS, max_tokens=20, stop=[stop, "\x00never"])[0]
    assert cut == full[: full.find(stop)]
    assert lm.generate(MSGS, max_tokens=0) == [""]


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="hf, llamacpp, openai, scripted, smollm2"):
        llm.load("gpt-17")


def test_hf_needs_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="path"):
        llm.load("hf")
    with pytest.raises(llm.LLMOptionsError, match="config.json"):  # a wrong path: retrying cannot help
        llm.load("hf", path=tmp_path)


def test_importing_the_llm_package_stays_light() -> None:
    code = ("import sys, agentcritic.llm; heavy = [m for m in ('torch', 'transformers', 'httpx') "
            "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lru_cache_forgets_the_least_recently_used() -> None:
    c = LRUCache(maxsize=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "b" is now the oldest
    c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3


def test_cache_root_follows_the_env_var(monkeypatch, tmp_path: Path) -> None:
    from agentcritic.llm.hf import SMOLLM2_CACHE_NAME, model_cache_dir

    monkeypatch.setenv("AGENTCRITIC_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    assert model_cache_dir(SMOLLM2_CACHE_NAME) == tmp_path / "models" / "smollm2-135m-instruct"
    monkeypatch.delenv("AGENTCRITIC_CACHE")
    assert cache_root() == Path.home() / ".cache" / "agentcritic"


def test_a_failed_build_leaves_no_half_cache(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"

    def crash(tmp: Path) -> None:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # as if the user killed the first load

    with pytest.raises(KeyboardInterrupt):
        build_folder_atomically(target, crash)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # the temporary folder is gone too

    built = []
    build_folder_atomically(target, lambda tmp: built.append((tmp / "config.json").write_text("{}")))
    assert (target / "config.json").read_text() == "{}"
    build_folder_atomically(target, lambda tmp: built.append("again"))
    assert len(built) == 1  # an existing folder is reused, not rebuilt


# ---------------------------------------------------------------------- the real embedded model
@pytest.fixture(scope="module")
def smollm2():
    # The first load on a machine de-quantises the GGUF (tens of seconds); later ones read the cache.
    return llm.load("smollm2", threads=1, dtype="float32")  # the reference: exact comparisons below


@pytest.mark.slow
def test_smollm2_kv_score_equals_naive_and_cached_load_is_fast(smollm2) -> None:
    lm = smollm2
    assert lm.backend == "smollm2" and lm.template == "chat"
    assert lm.render(MSGS).endswith("<|im_start|>assistant\n")
    assert (lm.path / "model.safetensors").is_file() and (lm.path / "tokenizer.json").is_file()
    assert not any(p.name.startswith(".tmp-") for p in lm.path.parent.iterdir())
    again = llm.load("smollm2", threads=1, dtype="float32")
    assert again.load_seconds < 3.0, f"cached load took {again.load_seconds:.2f} s"
    cands = CANDS[:4]
    fast, naive = lm.score(MSGS, cands), lm.score_naive(MSGS, cands)
    assert max(abs(a - b) for a, b in zip(fast, naive)) < 1e-4
    # In float64 the two computations agree to rounding: they are the same quantity.
    again.model.double()
    fast64, naive64 = again.score(MSGS, cands), again.score_naive(MSGS, cands)
    assert max(abs(a - b) for a, b in zip(fast64, naive64)) < 1e-8
    # a sane model prefers an action-shaped reply over noise
    assert lm.score(MSGS, ["Action: open the door"])[0] > lm.score(MSGS, ["zq xv kk"])[0]
    text = lm.generate("What is the capital of France? Answer in one word.", max_tokens=8)[0]
    assert "Paris" in text


# ---------------------------------------------------------------------- llamacpp (optional extra)
def test_llamacpp_without_the_extra_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'agentcritic\[llamacpp\]'"):
        llm.load("llamacpp")


def test_llamacpp_generates_with_the_embedded_gguf() -> None:
    pytest.importorskip("xllamacpp")
    lm = llm.load("llamacpp", threads=1, n_ctx=1024, score_with=None)
    text = lm.generate("What is the capital of France? Answer in one word.", max_tokens=8)
    assert len(text) == 1 and "Paris" in text[0]
    a = lm.generate(MSGS, n=3, temperature=1.0, max_tokens=12, seed=4)
    assert a == lm.generate(MSGS, n=3, temperature=1.0, max_tokens=12, seed=4)
    assert len(a) == 3 and len(set(a)) > 1
    cut = lm.generate("Count from 1 to 10, separated by commas.", max_tokens=40, stop=["5"])[0]
    assert "5" not in cut and "4" in cut
    u = lm.usage
    assert u.calls == 4 and 0 < u.completion_tokens <= 8 + 2 * 36 + 40 and u.prompt_tokens > 0
    with pytest.raises(llm.LLMError, match="cannot score"):
        lm.score(MSGS, ["Action: look"])


@pytest.mark.slow
def test_llamacpp_scores_through_transformers_on_the_same_weights(smollm2) -> None:
    pytest.importorskip("xllamacpp")
    lm = llm.load("llamacpp", threads=1, n_ctx=1024)
    ref = smollm2
    cands = ["Action: open the door", "Action: look"]
    # the same candidates in one call on both sides: a score is a float32 forward pass whose last
    # digits (~1e-6) depend on the other candidates sharing its pass, and ref has cached scores
    ref.clear_cache(kv=False)
    assert lm.score(MSGS, cands) == pytest.approx(ref.score(MSGS, cands), abs=1e-6)


@pytest.mark.slow
def test_smollm2_default_is_the_fast_route_and_counts_the_engines_tokens() -> None:
    fast = llm.load("smollm2", threads=1)
    from agentcritic.llm import hf

    assert fast.generator == "llamacpp" and fast.dtype == str(hf.resolve_dtype("auto", "cpu")).removeprefix("torch.")
    before = fast.usage
    text = fast.generate("What is the capital of France? Answer in one word.", max_tokens=8)[0]
    spent = fast.usage - before
    assert "Paris" in text and spent.calls == 1 and spent.completion_tokens > 0
    assert llm.load("smollm2", threads=1, generate_with="torch").generator == "torch"
    with pytest.raises(llm.LLMOptionsError, match="generate_with='gpu'.*llamacpp"):
        llm.load("smollm2", generate_with="gpu")


@pytest.mark.slow
def test_smollm2_default_scores_do_not_depend_on_the_prompts_scored_before() -> None:
    # the default model (bfloat16 on a CPU with AMX/AVX512-BF16): a warm score, continued from any
    # earlier prompt, is the cold one bit for bit (without the fixed blocks it is off by up to ~1 nat)
    room = " ".join(f"There is a {c} {o} on the {p}." for c in ("red", "blue", "green") for o in ("cup", "key", "book")
                    for p in ("table", "shelf"))
    steps = [f"\nAction: go to the {p}\nObservation: you see a cup." for p in ("table", "shelf", "bed", "door")]
    prompts = [[{"role": "system", "content": "You are in a house. " + room},
                {"role": "user", "content": "Put the red cup in the sink." + "".join(steps[:k])}] for k in range(4)]
    cands = ["Action: take the red cup", "Action: go to the sink", "Action: look", "Action: open the door"]
    warm, cold = llm.load("smollm2", threads=1), llm.load("smollm2", threads=1)
    assert warm.kv_block == 64 and len(warm.encode(warm.render(prompts[3]))) > 3 * 64
    for i in (0, 1, 2, 3, 1, 3, 0, 2):
        warm.clear_cache(kv=False)
        cold.clear_cache()
        assert warm.score(prompts[i], cands) == cold.score(prompts[i], cands)
    assert warm.prefix_tokens_reused > 0
