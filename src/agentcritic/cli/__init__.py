"""The ``agentcritic`` command. Thin: it parses flags, builds a config, and calls the library.

One module per area registers its commands on the shared app (:mod:`agentcritic.cli.app`);
heavy modules are imported inside the commands so ``agentcritic --help`` is instant. An error the
user can fix (:class:`agentcritic.errors.AgentCriticError`) ends any command with one paragraph and
exit status 2, in one place (:class:`agentcritic.cli.app.UserErrorGroup`); other errors are bugs and
keep their traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from agentcritic.cli import env_commands  # noqa: F401  (registers its commands)
from agentcritic.cli import synth_commands  # noqa: F401  (registers its commands)
from agentcritic.cli import eval_commands  # noqa: F401  (evaluate, report, run, demo)
from agentcritic.cli import rm_commands  # noqa: F401  (train-rm, eval-rm, serve-rm)
from agentcritic.cli import helper_commands  # noqa: F401  (collect, train-prm, train-helper, eval-helper)
from agentcritic.cli import export_commands  # noqa: F401  (export)
from agentcritic.cli import llm_commands  # noqa: F401  (serve-llm)
from agentcritic.cli.app import app


def main() -> None:
    # an env given as a class path (``--env mymodule:MyEnv``) imports from the current directory,
    # as under ``python -m``; appended, so a file there never shadows an installed module
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        sys.exit(130)


__all__ = ["app", "main"]
