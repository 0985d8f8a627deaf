"""Reward-model training throughput: agentcritic's RewardTrainer vs TRL's RewardTrainer.

    .venv/bin/python benchmarks/bench_rm_train.py [--pairs 512] [--eval-pairs 128] [--batch-size 16]
        [--max-length 256] [--epochs 1] [--trl-variants tuned,defaults] [--threads N] [--bf16]
        [--ours-freeze 0|none] [--share on,off] [--data PREFS.jsonl ...] [--json FILE]

Both trainers get the same backbone (all-MiniLM-L6-v2 as ``AutoModelForSequenceClassification``
for TRL), the same preference pairs, batch size, max length, epochs, learning rate, seed and
threads, in one process, one after the other. Data: synthetic but env-like preference pairs (a
WebShop-like shop, 70 %, and Game of 24, 30 %), with the negative sources the synthesis stage
makes (``edit:option``, ``edit:product``, ``cross_policy``, ``truncate``, ``llm_negative``).
``--data`` trains on real ``preferences.jsonl`` files from ``agentcritic synthesize`` instead:
whole positives (a positive with all its negatives) are drawn until ``--pairs`` / ``--eval-pairs``
are reached, train and held-out apart by intent, so the sharing structure of real data is kept.
``--share on,off`` runs our trainer with and without ``share_texts`` (the pairs of one positive
batched together, each distinct input encoded once per batch).

TRL (``trl.RewardTrainer``) reads text rows (``prompt``, ``chosen``, ``rejected``): we give it
the very texts our model reads (intent + the trajectory, already cut to ``max_length`` tokens by
our truncation rule), so both train on the same tokens; TRL would otherwise *drop* every pair
longer than ``max_length``. Variants: ``tuned`` = TRL with gradient checkpointing off (its
fastest setting); ``defaults`` = TRL's own default of gradient checkpointing on. Precision is the
same for both trainers: fp32, or bf16 autocast with ``--bf16`` (TRL's own default; fast on CPUs
with avx512_bf16 or AMX, such as the AMD EPYC these numbers come from). Throughput = trained pairs / wall seconds
from building the trainer (tokenisation included) to the end of ``train()``; both models are then
scored by the same code on the same held-out pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from agentcritic.rendering import trajectory_text
from agentcritic.types import Preference, Step, Trajectory

# ----------------------------------------------------------------------------------- data
COLORS = ["black", "white", "navy blue", "red", "dark grey", "beige", "pink", "olive green", "brown", "light blue"]
SIZES = ["x-small", "small", "medium", "large", "x-large", "xx-large", "7", "8", "9", "10"]
TYPES = {
    "running shoes": ["lightweight", "non slip", "breathable", "rubber sole"],
    "hoodie": ["fleece lined", "machine wash", "long sleeve", "relaxed fit"],
    "sofa cover": ["stretch", "machine washable", "anti slip", "spandex"],
    "face moisturizer": ["fragrance free", "oil free", "spf 30", "for sensitive skin"],
    "phone case": ["shockproof", "slim fit", "wireless charging", "clear"],
    "coffee table": ["solid wood", "easy assembly", "storage shelf", "mid century"],
    "yoga pants": ["high waist", "tummy control", "squat proof", "pockets"],
    "led desk lamp": ["dimmable", "usb charging port", "eye caring", "touch control"],
}
BRANDS = ["Acme", "Zeno", "Harbor", "Lumen", "Pinecrest", "Vela", "Orbit", "Kestrel"]


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))


def _product(rng: random.Random, ptype: str, attrs: list[str], price: float) -> dict:
    return {
        "asin": _asin(rng),
        "title": f"{rng.choice(BRANDS)} {' '.join(rng.sample(attrs, k=min(2, len(attrs))))} {ptype} for women men, "
        f"{rng.choice(['2 pack', 'classic', 'new version', 'premium', 'everyday'])}",
        "price": price,
        "attrs": attrs,
        "colors": rng.sample(COLORS, k=rng.randint(3, 6)),
        "sizes": rng.sample(SIZES, k=rng.randint(3, 6)),
    }


def _results_page(rng: random.Random, products: list[dict], page: int = 1) -> str:
    rows = [f"[Back to Search] Page {page} (Total results: {rng.randint(30, 90)}) [Next >]"]
    for p in products:
        rows.append(f"[{p['asin']}] {p['title']} ${p['price']:.2f}")
    return " ".join(rows)


def _item_page(p: dict) -> str:
    return (
        f"[Back to Search] [< Prev] color [{'] ['.join(p['colors'])}] size [{'] ['.join(p['sizes'])}] "
        f"{p['title']} Price: ${p['price']:.2f} Rating: N.A. [Description] [Features] [Reviews] [Buy Now]"
    )


def _shop_episode(
    rng: random.Random,
    intent: str,
    query: str,
    results: list[dict],
    target: dict,
    color: str,
    size: str,
    wander: bool = False,
    stop_early: bool = False,
) -> Trajectory:
    first = f"WebShop [SEP] Instruction: [SEP] {intent} [SEP] Search"
    steps = [Step(f"search[{query}]", _results_page(rng, results))]
    if wander:
        steps.append(
            Step(
                "click[Next >]",
                _results_page(
                    rng,
                    [
                        _product(rng, target["title"].split()[-4], target["attrs"], target["price"] * 1.4)
                        for _ in range(rng.randint(4, 8))
                    ],
                    page=2,
                ),
            )
        )
        steps.append(Step("click[< Prev]", _results_page(rng, results)))
    steps.append(Step(f"click[{target['asin']}]", _item_page(target)))
    steps.append(Step(f"click[{color}]", f"You have clicked {color}. " + _item_page(target)[:160]))
    steps.append(Step(f"click[{size}]", f"You have clicked {size}."))
    if not stop_early:
        steps.append(Step("click[Buy Now]", "Thank you for shopping with us! Your order has been placed."))
    return Trajectory("shop", intent[:12], intent, steps, None, None, {"first_observation": first})


def make_shop_preferences(n: int, seed: int) -> list[Preference]:
    rng = random.Random(seed)
    out = []
    sources = ["edit:option", "edit:product", "cross_policy", "truncate"]
    for k in range(n):
        ptype = rng.choice(list(TYPES))
        attrs = TYPES[ptype]
        want = rng.choice(attrs)
        budget = rng.choice([20, 30, 40, 50, 60, 80, 100])
        target = _product(
            rng,
            ptype,
            [want, *rng.sample([a for a in attrs if a != want], 1)],
            round(rng.uniform(0.4, 0.95) * budget, 2),
        )
        target["title"] = f"{rng.choice(BRANDS)} {want} {ptype} {rng.choice(['classic', 'premium', '2 pack'])}"
        color, size = rng.choice(target["colors"]), rng.choice(target["sizes"])
        intent = f"i need a {want} {ptype}, {color} color, size {size}, and price lower than {budget}.00 dollars"
        others = [
            _product(
                rng,
                ptype if rng.random() < 0.6 else rng.choice(list(TYPES)),
                rng.sample(attrs, 2),
                round(rng.uniform(0.5, 1.6) * budget, 2),
            )
            for _ in range(rng.randint(3, 9))
        ]
        results = others[:]
        results.insert(rng.randint(0, len(results)), target)
        query = f"{want} {ptype} {color}"
        chosen = _shop_episode(random.Random(k), intent, query, results, target, color, size)
        source = sources[k % len(sources)]
        if source == "edit:option":
            if rng.random() < 0.5:
                bad_color = rng.choice([c for c in target["colors"] if c != color])
                rejected = _shop_episode(random.Random(k), intent, query, results, target, bad_color, size)
            else:
                bad_size = rng.choice([s for s in target["sizes"] if s != size])
                rejected = _shop_episode(random.Random(k), intent, query, results, target, color, bad_size)
        elif source == "edit:product":
            wrong = rng.choice(others)
            wrong = dict(
                wrong,
                colors=list(dict.fromkeys([color, *wrong["colors"]])),
                sizes=list(dict.fromkeys([size, *wrong["sizes"]])),
            )
            rejected = _shop_episode(random.Random(k), intent, query, results, wrong, color, size)
        elif source == "cross_policy":
            pricey = dict(target, asin=_asin(rng), price=round(budget * rng.uniform(1.2, 2.0), 2))
            rejected = _shop_episode(
                random.Random(k + 1), intent, query, results + [pricey], pricey, color, size, wander=True
            )
        else:
            rejected = _shop_episode(random.Random(k), intent, query, results, target, color, size, stop_early=True)
        out.append(Preference(intent, chosen, rejected, source))
    return out


def _game24_solution(rng: random.Random) -> tuple[list[int], list[tuple[int, str, int, int]], str]:
    """A random solvable puzzle with its three steps (a op b = c) and the answer expression."""
    while True:
        nums = [rng.randint(1, 13) for _ in range(4)]
        exprs = [(str(x), x) for x in nums]
        steps = []
        pool = list(exprs)
        for _ in range(3):
            i, j = rng.sample(range(len(pool)), 2)
            (ea, a), (eb, b) = pool[i], pool[j]
            op = rng.choice("+-*/")
            if op == "/" and (b == 0 or a % b):
                op = "*"
            if op == "-" and a < b:
                (ea, a), (eb, b) = (eb, b), (ea, a)
            c = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]
            steps.append((a, op, b, c))
            pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [(f"({ea} {op} {eb})", c)]
        if pool[0][1] == 24:
            return nums, steps, pool[0][0][1:-1] if pool[0][0].startswith("(") else pool[0][0]


def _game24_traj(nums: list[int], steps: list[tuple[int, str, int, int]], answer: str, intent: str) -> Trajectory:
    left = list(nums)
    out = []
    for a, op, b, c in steps:
        for x in (a, b):
            if x in left:
                left.remove(x)
        left.append(c)
        shown = " ".join(str(x) for x in sorted(left))
        out.append(Step(f"{a} {op} {b} = {c} (left: {shown})", f"Numbers left: {shown}"))
    if answer:
        out.append(Step(f"Answer: {answer} = 24", "Correct." if answer else ""))
    first = "Numbers left: " + " ".join(str(x) for x in sorted(nums))
    return Trajectory("game24", "p", intent, out, None, None, {"first_observation": first})


def make_game24_preferences(n: int, seed: int) -> list[Preference]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        nums, steps, answer = _game24_solution(rng)
        intent = f"Use the numbers {' '.join(map(str, nums))} and basic arithmetic operations (+ - * /) to obtain 24."
        chosen = _game24_traj(nums, steps, answer, intent)
        kind = k % 3
        if kind == 0:  # wrong arithmetic in one step
            j = rng.randrange(3)
            bad = list(steps)
            a, op, b, c = bad[j]
            bad[j] = (a, op, b, c + rng.choice([-2, -1, 1, 2, 3]))
            rejected, source = _game24_traj(nums, bad, answer, intent), "llm_negative"
        elif kind == 1:  # an invented number
            bad = list(steps)
            a, op, b, c = bad[0]
            bad[0] = (a + rng.randint(1, 3), op, b, c)
            rejected, source = _game24_traj(nums, bad, answer, intent), "llm_negative"
        else:
            rejected, source = _game24_traj(nums, steps[:2], "", intent), "truncate"
        out.append(Preference(intent, chosen, rejected, source))
    return out


def load_synthesized(paths: list[str], n_train: int, n_eval: int, seed: int) -> tuple[list, list]:
    """Whole positives from synthesized preference files, train and held-out disjoint by intent."""
    from agentcritic.rm.evaluation import read_preferences

    units: dict[tuple, list[Preference]] = {}
    for path in paths:
        for pref in read_preferences(path):
            key = (pref.intent, json.dumps(pref.chosen.to_dict(), sort_keys=True))
            units.setdefault(key, []).append(pref)
    by_intent: dict[str, list[list[Preference]]] = {}
    for (intent, _), prefs in units.items():
        by_intent.setdefault(intent, []).append(prefs)
    intents = sorted(by_intent)
    random.Random(seed).shuffle(intents)
    train: list[Preference] = []
    evals: list[Preference] = []
    for intent in intents:
        side = evals if len(evals) < n_eval else train
        if side is train and len(train) >= n_train:
            break
        for prefs in by_intent[intent]:
            side.extend(prefs)
    if len(train) < n_train:
        raise SystemExit(f"--data holds {len(train) + len(evals)} pairs; fewer than --pairs + --eval-pairs")
    random.Random(seed).shuffle(train)
    return train, evals


def make_preferences(n: int, seed: int, shop_share: float = 0.7) -> list[Preference]:
    """``n`` env-like pairs: ``shop_share`` from the shop, the rest Game of 24, shuffled."""
    n_shop = int(round(n * shop_share))
    prefs = make_shop_preferences(n_shop, seed) + make_game24_preferences(n - n_shop, seed + 7919)
    random.Random(seed).shuffle(prefs)
    return prefs


# ----------------------------------------------------------------------------------- runs
def run_ours(train, evals, args, freeze: str = "0", share: bool = True) -> dict:
    from agentcritic.rm import RewardConfig, RewardModel, RewardTrainer

    rm = RewardModel("minilm", max_length=args.max_length, pooling=args.pooling, seed=args.seed)
    if args.pair_input:  # (intent, trajectory) as a segment pair instead of one "Instruction: …" text
        rm.settings.pair_input = True
    cfg = RewardConfig(
        learning_rate=args.lr,
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        warmup_ratio=0.0,
        weight_decay=0.0,
        lr_scheduler="linear",
        progress=False,
        logging_steps=1000,
        center_coefficient=0.001,
        freeze_embeddings=freeze == "emb",
        freeze_layers=int(freeze) if freeze.isdigit() else 0,
        mixed_precision="bf16" if args.bf16 else "no",
        group_by_length=not args.no_group,
        share_texts=share,
        length_group_batches=args.group_batches,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = RewardTrainer(rm, cfg, train, eval_dataset=[])
    trainer.train()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "model": rm,
        "seconds": seconds,
        "cpu": cpu,
        "pairs": trainer.state.examples_seen,
        "steps": trainer.state.step,
    }


def trl_rows(rm, prefs) -> list[dict]:
    """The texts our model reads (cut to max_length by our rule), as TRL preference rows."""
    items = [(p.intent, p.chosen) for p in prefs] + [(p.intent, p.rejected) for p in prefs]
    texts = rm.model_texts(rm.pair_texts(items))
    n = len(prefs)
    return [{"prompt": texts[i][0] + "\n", "chosen": texts[i][1], "rejected": texts[n + i][1]} for i in range(n)]


def run_trl(rows, args, variant: str, out_dir: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig as TRLConfig
    from trl import RewardTrainer as TRLTrainer

    from agentcritic.rm.backbone import minilm_path

    path = str(minilm_path())
    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    kwargs = dict(
        output_dir=out_dir,
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        max_length=args.max_length + 1,
        seed=args.seed,
        bf16=args.bf16,
        fp16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1000,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        eos_token=tok.sep_token,
        center_rewards_coefficient=None,
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=True,
    )
    if variant == "tuned":
        kwargs["gradient_checkpointing"] = False
    cfg = TRLConfig(**kwargs)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = TRLTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
    kept = len(trainer.train_dataset)
    trainer.train()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "model": trainer.model,
        "tokenizer": tok,
        "seconds": seconds,
        "cpu": cpu,
        "pairs": kept * args.epochs,
        "kept": kept,
    }


def trl_accuracy(model, tok, rows, batch_size=64) -> dict:
    """Score TRL's model on its own input format (prompt + completion + [SEP]) in no-grad batches."""
    import numpy as np
    import torch

    model.eval()
    texts = [r["prompt"] + r["chosen"] + tok.sep_token for r in rows] + [
        r["prompt"] + r["rejected"] + tok.sep_token for r in rows
    ]
    scores = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=512, return_tensors="pt")
            scores.append(model(**enc).logits[:, 0].float().numpy())
    s = np.concatenate(scores)
    n = len(rows)
    return {"accuracy": float(np.mean((s[:n] > s[n:]) + 0.5 * (s[:n] == s[n:])))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=512)
    ap.add_argument("--eval-pairs", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pooling", default="auto", help="our model's pooling: auto (mean for MiniLM) or cls")
    ap.add_argument("--trl-variants", default="tuned,defaults", help="comma list of: tuned, defaults, none")
    ap.add_argument(
        "--ours-freeze",
        default="0",
        help="comma list of our variants: 0 (defaults), emb (freeze_embeddings), N (freeze_layers=N)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's choice)")
    ap.add_argument("--pair-input", action="store_true", help="our model: (intent, trajectory) as a segment pair")
    ap.add_argument("--no-group", action="store_true", help="our trainer: random batches, no length grouping")
    ap.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast for both (fast on CPUs with avx512_bf16 or AMX; TRL's default)",
    )
    ap.add_argument("--group-batches", type=int, default=50, help="our trainer: batches per length-sorted chunk")
    ap.add_argument("--share", default="on", help="comma list: on / off (our share_texts)")
    ap.add_argument("--data", nargs="+", default=None, help="synthesized preferences.jsonl files to train on")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data:
        train, evals = load_synthesized(args.data, args.pairs, args.eval_pairs, args.seed)
    else:
        train = make_preferences(args.pairs, args.seed)
        evals = make_preferences(args.eval_pairs, args.seed + 1000)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"data: {len(train)} train pairs, {len(evals)} held-out pairs "
        f"({', '.join(args.data) if args.data else 'generated: shop 70% / game24 30%'}); "
        f"MiniLM-L6, batch {args.batch_size}, max length {args.max_length}, {args.epochs} epoch(s), lr {args.lr}\n",
        flush=True,
    )
    results: list[dict] = []

    def report(row: dict) -> None:
        """Print a finished row at once (long runs under load must not lose finished work)."""
        rate, rate_cpu = row["pairs"] / row["seconds"], row["pairs"] / row["cpu"]
        print(
            f"done: {row['trainer']}: {row['pairs']} pairs in {row['seconds']:.1f} s wall ({rate:.2f} pairs/s), "
            f"{row['cpu']:.0f} CPU s ({rate_cpu:.2f} pairs per CPU s), held-out accuracy {row['accuracy']:.3f}",
            flush=True,
        )
        if args.json:
            Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))

    rm = None
    ours_variants = [
        (freeze, share == "on")
        for freeze in [x.strip() for x in args.ours_freeze.split(",") if x.strip() and x.strip() != "none"]
        for share in [x.strip() for x in args.share.split(",") if x.strip()]
    ]
    for freeze, share in ours_variants:
        load = os.getloadavg()[0]
        ours = run_ours(train, evals, args, freeze, share)
        model = ours["model"]
        c = model.score([(p.intent, p.chosen) for p in evals], batch_size=64)
        r = model.score([(p.intent, p.rejected) for p in evals], batch_size=64)
        acc = float(np.mean((c > r) + 0.5 * (c == r)))
        label = f"agentcritic RewardTrainer (pooling={model.info['pooling']}"
        label += ", no length grouping" if args.no_group else ""
        label += ", segment-pair input" if args.pair_input else ""
        label += ", bf16" if args.bf16 else ""
        label += "" if share else ", share_texts off"
        label += "" if args.group_batches == 50 or args.no_group else f", chunks of {args.group_batches} batches"
        label += {"0": ", defaults)", "emb": ", token embeddings frozen)"}.get(
            freeze, f", embeddings + first {freeze} layers frozen)"
        )
        results.append(
            {
                "trainer": label,
                "pairs": ours["pairs"],
                "seconds": ours["seconds"],
                "cpu": ours["cpu"],
                "accuracy": acc,
                "load": load,
            }
        )
        report(results[-1])
        if rm is None:
            rm = model
            items = [(p.intent, t) for p in train for t in (p.chosen, p.rejected)]
            lengths = [len(f["input_ids"]) for f in rm.encode(items)]
            full = [
                len(ids)
                for ids in rm.tokenizer([i for i, _ in items], [trajectory_text(t) for _, t in items], verbose=False)[
                    "input_ids"
                ]
            ]
            print(
                f"tokens per input after fitting: mean {np.mean(lengths):.0f}, median {np.median(lengths):.0f}, "
                f"max {max(lengths)}; before: median {np.median(full):.0f}, "
                f"{np.mean(np.array(full) > args.max_length):.0%} longer than {args.max_length}\n",
                flush=True,
            )

    variants = [v for v in args.trl_variants.split(",") if v and v != "none"]
    if variants:
        if rm is None:  # TRL alone: our model is needed only for the text fitting
            from agentcritic.rm import RewardModel

            rm = RewardModel("minilm", max_length=args.max_length, pooling=args.pooling, seed=args.seed)
        rows = trl_rows(rm, train)
        eval_rows = trl_rows(rm, evals)
        for variant in variants:
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as tmp:
                res = run_trl(rows, args, variant, tmp)
            acc = trl_accuracy(res["model"], res["tokenizer"], eval_rows)["accuracy"]
            label = (
                "TRL RewardTrainer, gradient checkpointing off"
                if variant == "tuned"
                else "TRL RewardTrainer, TRL defaults (gradient checkpointing on)"
            ) + (", bf16" if args.bf16 else "")
            results.append(
                {
                    "trainer": label,
                    "pairs": res["pairs"],
                    "seconds": res["seconds"],
                    "cpu": res["cpu"],
                    "accuracy": acc,
                    "kept": res["kept"],
                    "load": load,
                }
            )
            report(results[-1])

    base = results[0]["pairs"] / results[0]["seconds"]
    base_cpu = results[0]["pairs"] / results[0]["cpu"]
    print(
        "| trainer | pairs trained | wall s | pairs/s (wall) | ours ÷ this (wall) | CPU s | ours ÷ this (CPU) "
        "| held-out accuracy | load avg at start |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        rate, rate_cpu = row["pairs"] / row["seconds"], row["pairs"] / row["cpu"]
        print(
            f"| {row['trainer']} | {row['pairs']} | {row['seconds']:.1f} | {rate:.2f} | {base / rate:.2f}× | "
            f"{row['cpu']:.0f} | {base_cpu / rate_cpu:.2f}× | {row['accuracy']:.3f} | {row['load']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
