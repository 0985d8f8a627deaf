"""Reward-model server: requests/s and latency with concurrent clients on loopback.

    .venv/bin/python benchmarks/bench_rm_server.py [--clients 32] [--requests 256] [--pairs-per-request 1]
        [--max-length 256] [--backbone minilm] [--threads N]

Saves the MiniLM reward model, starts the real server in its own process (``rm.server.serve``:
uvicorn on 127.0.0.1, a free port) so clients and server do not share a GIL, then ``--clients``
asyncio clients (httpx) in this process send ``--requests`` ``POST /v1/score``
requests in total, each holding ``--pairs-per-request`` env-like (intent, trajectory) pairs, as
fast as answers come back. Two server settings: the micro-batcher on (requests collected for up to
5 ms and scored in one forward) and off (``max_micro_batch=1``: one forward per request). Reports
requests/s, pairs/s, p50/p99 latency and the mean batch the server formed. Loopback only; the
request count is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rm_train import make_preferences  # noqa: E402


async def drive(url: str, bodies: list[list[dict]], clients: int) -> tuple[float, list[float]]:
    import httpx

    queue: asyncio.Queue[list[dict]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            r = await http.post("/v1/score", json=body)
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
            assert len(r.json()["scores"]) == len(body)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        await http.get("/health")
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - t0, latencies


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--pairs-per-request", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--modes", default="batched,unbatched")
    args = ap.parse_args()

    import httpx
    import torch
    from transformers.utils import logging as hf_logging

    from agentcritic.rm import RewardModel

    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    rm = RewardModel(args.backbone, max_length=args.max_length)
    prefs = make_preferences(max(8, args.requests * args.pairs_per_request // 2 + 1), seed=11)
    pool = [{"intent": p.intent, "trajectory": t.to_dict()} for p in prefs for t in (p.chosen, p.rejected)]
    k = args.pairs_per_request
    bodies = [[pool[(i * k + j) % len(pool)] for j in range(k)] for i in range(args.requests)]

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{rm!r}; {args.clients} concurrent clients, {args.requests} requests x {k} pair(s), loopback HTTP\n")
    print("| server | requests/s | pairs/s | p50 latency (s) | p99 latency (s) | requests per forward | model busy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = rm.save_pretrained(Path(tmp) / "rm")
        for mode in [m for m in args.modes.split(",") if m]:
            kwargs = (
                {"batch_wait_ms": 5.0, "max_micro_batch": 64}
                if mode == "batched"
                else {"batch_wait_ms": 0.0, "max_micro_batch": 1}
            )
            options = (f"max_batch={max(256, k)}, batch_wait_ms={kwargs['batch_wait_ms']}, "
                       f"max_micro_batch={kwargs['max_micro_batch']}")
            with running_server(model_dir, options, Path(tmp) / f"server-{mode}.log", args.threads) as (url, _):
                httpx.post(f"{url}/v1/score", json=bodies[0], timeout=600)  # warm-up
                before = httpx.get(f"{url}/health").json()["batching"]
                seconds, lat = asyncio.run(drive(url, bodies, args.clients))
                stats = httpx.get(f"{url}/health").json()["batching"]
                busy = (stats["model_seconds"] - before["model_seconds"]) / seconds
            per_forward = (stats["requests"] - 1) / max(1, stats["batches"] - 1)
            label = (
                "micro-batcher on (5 ms window, up to 64 items)"
                if mode == "batched"
                else "micro-batcher off (one forward per request)"
            )
            print(
                f"| {label} | {args.requests / seconds:.1f} | {args.requests * k / seconds:.1f} | "
                f"{statistics.median(lat):.3f} | {pct(lat, 0.99):.3f} | {per_forward:.1f} | {busy:.0%} |"
            )


@contextlib.contextmanager
def running_server(model_dir: Path, options: str, log_path: Path, threads: int | None):
    """``agentcritic.rm.server.serve(model_dir, <options>)`` in a child process on a free loopback port,
    until the block ends; yields (its URL, the process)."""
    port = free_port()
    code = f"from agentcritic.rm.server import serve; serve({str(model_dir)!r}, port={port}, {options})"
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    with open(log_path, "w+b") as log_file:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, log_file)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, log_file, timeout: float = 300.0) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            log_file.seek(0)
            raise RuntimeError(f"the server exited: {log_file.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server did not come up")


if __name__ == "__main__":
    main()
