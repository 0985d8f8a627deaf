"""Generation speed, load time and memory of SmolLM2-135M: torch (``smollm2``) and llama.cpp.

    .venv/bin/python benchmarks/bench_llm_generate.py [--tokens 64] [--repeats 3] [--threads N] [--no-first-load]
        [--dtype bfloat16]

Every measurement runs in a fresh Python process, so load times include nothing cached in memory:
- first load: ``load("smollm2")`` with an empty cache folder (de-quantise the GGUF, write safetensors);
- cached load: the same with the cache in place; ``model`` is the time to read tokenizer + weights
  (``lm.load_seconds``), ``total`` adds the imports of torch/transformers;
- tokens/s: greedy ``generate`` of up to ``--tokens`` tokens (median of ``--repeats``), counted
  from ``lm.usage`` (generated tokens / seconds, prompt processing included);
- peak RSS: ``resource.getrusage`` of that process after loading and generating;
- ``--dtype D`` adds a row for the torch model in ``D`` (``load("smollm2", dtype=D)``, its load-time
  probe included in the load times).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a long story about a robot who learns to cook. Use many details."},
]


def worker(backend: str, tokens: int, repeats: int, threads: int | None) -> dict:
    import resource
    import statistics

    t0 = time.perf_counter()
    from agentcritic import llm

    # "smollm2:float32:torch": the model in that dtype, generating with that engine
    backend, dtype, generate_with = (backend.split(":") + ["", ""])[:3]
    kw = ({"threads": threads} if threads else {}) | ({"dtype": dtype} if dtype else {}) \
        | ({"generate_with": generate_with} if generate_with else {})
    lm = llm.load(backend, **kw)
    total = time.perf_counter() - t0
    lm.generate(PROMPT, max_tokens=4)  # warm-up
    rates = []
    for _ in range(repeats):
        before = lm.usage
        lm.generate(PROMPT, max_tokens=tokens)
        spent = lm.usage - before
        rates.append(spent.completion_tokens / spent.seconds)
    return {"load_total": total, "load_model": getattr(lm, "load_seconds", float("nan")),
            "tok_s": statistics.median(rates), "tok_s_min": min(rates), "tok_s_max": max(rates),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(backend: str, args: argparse.Namespace, env: dict | None = None) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", backend, "--tokens", str(args.tokens),
           "--repeats", str(args.repeats)] + (["--threads", str(args.threads)] if args.threads else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["?"]
        print(f"  ({backend} failed: {tail[0]})", flush=True)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-first-load", action="store_true", help="skip the (slow) cold-cache load")
    ap.add_argument("--dtype", default=None, choices=["bfloat16", "auto"],
                    help="also time the torch model in this dtype")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.tokens, args.repeats, args.threads)))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load avg {os.getloadavg()[0]:.1f}, threads: {args.threads or 'default'}")
    print(f"greedy generation of up to {args.tokens} tokens, median of {args.repeats}; "
          "one fresh process per row\n")
    rows = []
    if not args.no_first_load:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            r = run_worker("smollm2", args, {"AGENTCRITIC_CACHE": cache})
            if r:
                rows.append(("smollm2 (the default), first load: empty cache", r))
            print(f"  (first-load run took {time.perf_counter() - t0:.0f} s)", flush=True)
    r = run_worker("smollm2:float32:torch", args)
    if r:
        rows.append(("smollm2, float32, torch generation (the reference; the old default)", r))
    if args.dtype:
        r = run_worker(f"smollm2:{args.dtype}:torch", args)
        if r:
            rows.append((f"smollm2, dtype={args.dtype}, torch generation", r))
    r = run_worker("smollm2", args)
    if r:
        rows.append(("smollm2, the default (bf16 scoring, llama.cpp generation), cached", r))
    try:
        import xllamacpp  # noqa: F401

        r = run_worker("llamacpp", args)
        if r:
            rows.append(("llamacpp (xllamacpp, GGUF Q4_1)", r))
    except ImportError:
        print("  (llamacpp: xllamacpp not installed; pip install 'agentcritic[llamacpp]')")

    print("| backend | load total s | model load s | tokens/s (median) | min–max | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['load_total']:.2f} | {r['load_model']:.2f} | {r['tok_s']:.1f} | "
              f"{r['tok_s_min']:.1f}–{r['tok_s_max']:.1f} | {r['peak_rss_mb']:.0f} |")
    torch_rows = [r for name, r in rows if "cached" in name]
    if torch_rows:
        ok = torch_rows[0]["peak_rss_mb"] <= 1536
        print(f"\npeak RSS with SmolLM2 loaded (torch): {torch_rows[0]['peak_rss_mb']:.0f} MB "
              f"({'within' if ok else 'over'} the 1.5 GB target)")


if __name__ == "__main__":
    main()
