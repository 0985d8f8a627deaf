"""A private JVM behind a py4j gateway, for the envs that wrap a Scala simulator.

Each env instance owns one JVM, so envs in one process never share simulator state, and the JVM
is ended by ``close()``, on garbage collection, or when Python exits.
"""

from __future__ import annotations

import contextlib
import shutil
import weakref
from collections.abc import Sequence
from typing import Any

from agentcritic.envs.base import EnvError, TextEnv


def _stop_jvm(gateway: Any, proc: Any) -> None:
    with contextlib.suppress(Exception):  # the JVM may already be gone
        gateway.shutdown()
    if proc.poll() is None:
        try:  # py4j's die_on_exit: the JVM exits when its stdin reaches end of file
            proc.stdin.close()
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait()


class PrivateJvm:
    """Starts ``jar_path`` in a JVM of its own; ``gateway.jvm`` reaches its classes."""

    def __init__(self, env_name: str, jar_path: str, basepath: str, java_opts: Sequence[str]) -> None:
        if shutil.which("java") is None:
            raise EnvError(f"{env_name}: needs Java (8 or later) on PATH; install a JRE, e.g. openjdk-17-jre-headless")
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

        port, proc = launch_gateway(
            classpath=jar_path, die_on_exit=True, cwd=basepath, javaopts=list(java_opts), return_proc=True
        )
        self.gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port, auto_field=True), java_process=proc)
        self.proc = proc
        self._finalizer = weakref.finalize(self, _stop_jvm, self.gateway, proc)  # before anything can fail

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def close(self) -> None:
        self._finalizer()


class JvmEnv(TextEnv):
    """An env wrapping a Scala simulator in a :class:`PrivateJvm` of its own (``self._jvm``, made on
    first use); its expert follows the simulator's gold path (:meth:`gold_actions`)."""

    _jvm: PrivateJvm | None = None

    def gold_actions(self, task_id: str | None = None) -> list[str]:
        """The simulator's gold action sequence for a task (the current one by default)."""
        raise NotImplementedError

    @property
    def jvm_pid(self) -> int | None:
        """The process id of this env's JVM (None before the first reset and after close)."""
        return None if self._jvm is None else self._jvm.pid

    def _expert(self) -> str | None:
        # The gold path's next action while the episode has followed it; off the path it has none.
        gold = self.gold_actions()
        n = len(self.actions)
        if n >= len(gold) or self.actions != gold[:n]:
            return None
        return gold[n]

    def close(self) -> None:
        if self._jvm is not None:
            self._jvm.close()
            self._jvm = None
