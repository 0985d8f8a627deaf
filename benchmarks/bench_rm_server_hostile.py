"""Reward-model server under a hostile client: valid-request latency and the server's peak memory.

    .venv/bin/python benchmarks/bench_rm_server_hostile.py [--clients 16] [--requests-per-client 32]
        [--max-length 256] [--backbone minilm|tiny] [--threads N] [--body-timeout 2] [--max-seconds 300]

Saves the reward model, starts the real server in its own process (``rm.server.serve``: uvicorn on
127.0.0.1, a free port), then ``--clients`` asyncio clients (httpx) each send
``--requests-per-client`` valid ``POST /v1/score`` requests (one env-like pair each) as fast as
answers come back. Two runs, each against a fresh server: quiet (the valid clients alone) and
hostile (one more client cycling through a lone surrogate ``"\\ud800"``, six 2.2 MB texts at
once, a 13 MB body, JSON nested 100,000 deep, a 5,000-digit integer, and a stalled body: headers
and part of a body, then silence until the server answers 408). Reports valid requests/s,
p50/p99/max latency, how many valid requests failed (should be 0), what the hostile requests got,
and the server process's peak RSS (``VmHWM``). Loopback only; request counts and the run time (``--max-seconds``) are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rm_server import pct, running_server  # noqa: E402
from bench_rm_train import make_preferences  # noqa: E402

HUGE_CHARS = 2_200_000


def hostile_bodies() -> dict[str, bytes]:
    huge = [{"intent": "buy shoes", "trajectory": "Action: search[shoes]\nObservation: " + "y" * HUGE_CHARS}]
    return {
        "surrogate": json.dumps([{"intent": "buy \ud800 shoes", "trajectory": "Action: click[a]"}]).encode(),
        "2.2 MB text (6 at once)": json.dumps(huge).encode(),
        "13 MB body": json.dumps(huge * 6).encode(),
        "nested JSON": b"[" * 100_000 + b"]" * 100_000,
        "5000-digit int": b'[{"intent": "x", "trajectory": "y", "n": ' + b"9" * 5000 + b"}]",
    }


async def stalled_body(port: int, wait: float) -> str:
    """Headers and a part of the body, then nothing: what the server answers (or 'no answer')."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000\r\n\r\n[{"intent": "x", "traj'
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), wait)
        return line.decode(errors="replace").split(" ")[1] if line else "closed"
    except (TimeoutError, ConnectionError):
        return "no answer"
    finally:
        writer.close()


async def drive(url: str, port: int, bodies: list[list[dict]], clients: int, per_client: int, hostile: bool,
                body_timeout: float, max_seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    valid_status: Counter[str] = Counter()
    hostile_status: Counter[str] = Counter()
    done = asyncio.Event()
    t_end = time.monotonic() + max_seconds

    async def client(c: int, http: httpx.AsyncClient) -> None:
        for i in range(per_client):
            if time.monotonic() > t_end:
                return
            body = bodies[(c * per_client + i) % len(bodies)]
            t0 = time.perf_counter()
            try:
                r = await http.post("/v1/score", json=body)
                ok = r.status_code == 200 and len(r.json()["scores"]) == len(body)
                valid_status["200" if ok else str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                valid_status[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    async def attacker(http: httpx.AsyncClient) -> None:
        kinds = hostile_bodies()
        while not done.is_set() and time.monotonic() < t_end:
            for name, body in kinds.items():
                if done.is_set():
                    return
                copies = 6 if name.startswith("2.2 MB") else 1
                answers = await asyncio.gather(
                    *(http.post("/v1/score", content=body, headers={"content-type": "application/json"})
                      for _ in range(copies)),
                    return_exceptions=True,
                )
                for r in answers:
                    status = type(r).__name__ if isinstance(r, BaseException) else r.status_code
                    hostile_status[f"{name}: {status}"] += 1
            hostile_status[f"stalled body: {await stalled_body(port, body_timeout + 10)}"] += 1

    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await http.get("/health")
        t0 = time.perf_counter()
        bad = asyncio.create_task(attacker(http)) if hostile else None
        await asyncio.gather(*(client(c, http) for c in range(clients)))
        seconds = time.perf_counter() - t0
        done.set()
        if bad is not None:
            await bad
    return {"seconds": seconds, "latencies": latencies, "valid": valid_status, "hostile": hostile_status}


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests-per-client", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--backbone", default="minilm", help="a backbone name or folder; 'tiny': a tiny random BERT")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--body-timeout", type=float, default=2.0, help="the server's body_timeout_s")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this long, per run")
    ap.add_argument("--modes", default="quiet,hostile")
    args = ap.parse_args()

    import httpx
    import torch
    from transformers.utils import logging as hf_logging

    from agentcritic.rm import RewardModel
    from agentcritic.rm.backbone import make_tiny_backbone

    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        backbone = make_tiny_backbone(Path(tmp) / "tiny", "bert") if args.backbone == "tiny" else args.backbone
        rm = RewardModel(backbone, max_length=args.max_length)
        n = args.clients * args.requests_per_client
        prefs = make_preferences(max(8, n // 2 + 1), seed=11)
        pool = [[{"intent": p.intent, "trajectory": t.to_dict()}] for p in prefs for t in (p.chosen, p.rejected)]
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{rm!r}; {args.clients} valid clients x {args.requests_per_client} requests, loopback HTTP\n")
        print(
            "| run | valid requests/s | p50 (s) | p99 (s) | max (s) | valid answers | hostile answers "
            "| server peak RSS (MB) |"
        )
        print("|---|---:|---:|---:|---:|---|---|---:|")
        model_dir = rm.save_pretrained(Path(tmp) / "rm")
        for mode in [m for m in args.modes.split(",") if m]:
            log = Path(tmp) / f"server-{mode}.log"
            with running_server(model_dir, f"body_timeout_s={args.body_timeout}", log, args.threads) as (url, proc):
                port = int(url.rsplit(":", 1)[1])
                httpx.post(f"{url}/v1/score", json=pool[0], timeout=600)  # warm-up
                res = asyncio.run(
                    drive(url, port, pool, args.clients, args.requests_per_client, mode == "hostile",
                          args.body_timeout, args.max_seconds)
                )
                rss = peak_rss_mb(proc.pid)
            lat = res["latencies"] or [float("nan")]
            valid = ", ".join(f"{k}: {v}" for k, v in sorted(res["valid"].items()))
            hostile = "; ".join(f"{k} x{v}" for k, v in sorted(res["hostile"].items())) or "-"
            print(
                f"| {mode} | {len(res['latencies']) / res['seconds']:.1f} | {statistics.median(lat):.3f} | "
                f"{pct(lat, 0.99):.3f} | {max(lat):.3f} | {valid} | {hostile} | "
                f"{'n/a' if rss is None else f'{rss:.0f}'} |"
            )


if __name__ == "__main__":
    main()
