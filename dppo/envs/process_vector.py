"""Env workers as local processes, each holding a contiguous block of the envs (dppo/envs/blocks.py): what
env.overlap runs the envs in when they are not Ray actors. Two workers by default, one per group, so that one
group's envs step while the learner samples the other's actions.

Workers are spawned (no fork of a process that holds torch's or TensorFlow's threads), ignore Ctrl-C (the
learner handles it and closes them), and exit when the learner's end of the pipe goes away. An exception inside
a worker comes back as a RuntimeError of one line naming it; a worker that died as an EOFError: the loop's
env_failure turns either into exit 4 with the last checkpoint kept.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from multiprocessing.connection import Connection
from typing import Any

from dppo.envs.blocks import BlockVectorEnv, EnvBlock
from shared.data.envs import EnvSpec
from shared.errors import ConfigError


def _serve(conn: Connection, spec: EnvSpec, n: int) -> None:
    """A worker's loop: build the block, then answer (method, args) calls until "close" or the pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        block = EnvBlock(spec, n)
    except Exception as exc:  # noqa: BLE001 - sent back to the learner as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", None))
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):  # the learner is gone
            break
        try:
            answer = getattr(block, method)(*args)
        except Exception as exc:  # noqa: BLE001 - one line back; the learner decides
            conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
            continue
        conn.send(("ok", answer))
        if method == "close":
            break
    conn.close()


class ProcessVectorEnv(BlockVectorEnv):
    """spec.n_envs envs in `n_workers` spawned processes (blocks as even as possible, in env order)."""

    def __init__(self, spec: EnvSpec, n_workers: int = 2) -> None:
        if n_workers > spec.n_envs:
            raise ConfigError(f"{n_workers} env worker processes need at least as many envs (env.n_envs="
                              f"{spec.n_envs})")
        self._split(spec.n_envs, n_workers)
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for k in self.sizes:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(there, spec, k), daemon=True, name="dppo-env-worker")
            proc.start()
            there.close()
            self._conns.append(here)
            self._procs.append(proc)
        self._closed_workers = False
        try:  # each worker's first answer: its envs are built
            for w, conn in enumerate(self._conns):
                self._answer(w, conn)
            spaces = self._call_all("spaces")
        except (RuntimeError, EOFError) as exc:
            self.close(terminate=True)
            raise ConfigError(f"an environment worker could not build its envs: {exc}") from None
        self._ready(spaces[0])

    @staticmethod
    def _answer(worker: int, conn: Connection) -> Any:
        try:
            status, value = conn.recv()
        except (EOFError, OSError):
            raise EOFError(f"environment worker {worker} died") from None
        if status == "error":
            raise RuntimeError(value)
        return value

    def _send(self, worker: int, method: str, *args: Any) -> Any:
        try:
            self._conns[worker].send((method, args))
        except (BrokenPipeError, OSError):
            raise EOFError(f"environment worker {worker} died") from None
        return worker

    def _gather(self, handles: list[Any]) -> list[Any]:
        """The answers of the calls sent to these workers; every one is read before an error is raised, so
        that no answer is left in a pipe for the next call."""
        answers, error = [], None
        for w in handles:
            try:
                answers.append(self._answer(w, self._conns[w]))
            except (RuntimeError, EOFError) as exc:
                error = error or exc
        if error is not None:
            raise error
        return answers

    def close_extras(self, terminate: bool = False, **kwargs: Any) -> None:
        """Close the envs and let the workers exit (or kill them when terminate, e.g. after one died)."""
        if self._closed_workers:
            return
        self._closed_workers = True
        if not terminate:
            try:
                self._call_all("close")
            except (RuntimeError, EOFError):
                terminate = True
        for proc in self._procs:
            if terminate:
                proc.kill()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
