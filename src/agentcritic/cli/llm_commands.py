"""``serve-llm``: the embedded model (or any GGUF) behind an OpenAI-compatible server on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from agentcritic.cli.app import app


@app.command("serve-llm")
def serve_llm(
    model: Optional[Path] = typer.Option(None, help="a .gguf model (default: the embedded SmolLM2-135M-Instruct)"),
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8080, help="TCP port (0: a free one)"),
    parallel: int = typer.Option(4, help="requests decoded together (llama.cpp's slots)"),
    ctx: Optional[int] = typer.Option(None, "--ctx", help="context tokens shared by the slots (default 2048 a slot)"),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: all cores)"),
) -> None:
    """Serve a GGUF model with llama.cpp's OpenAI-compatible server until interrupted (Ctrl-C).

    Point any LLM stage at it: ``--policy openai --mode generate --base-url URL --concurrency N``.
    """
    from agentcritic.llm.llamacpp import LlamaCppServer

    with LlamaCppServer(model, host=host, port=port, parallel=parallel, n_ctx=ctx, threads=threads) as server:
        typer.echo(f"serving {server.model_path.name} at {server.url} ({parallel} requests decoded together); "
                   "Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopped")
