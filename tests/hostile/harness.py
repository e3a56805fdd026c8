"""Run ``analogsim ARGV`` in a child capped in CPU time and memory, cheaply and many times.

Children are forked by a multiprocessing fork server that imported analogsim (and torch) once
but never ran torch's thread pools, so a child starts in milliseconds and may build models
safely (forking the test process itself, after torch has run threads, could deadlock).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

CPU_S = 2
MEMORY = 500 * 2**20
WALL_S = 20  # a hang (no CPU used) is caught here

_PRELOAD = ["analogsim.cli", "analogsim.runner.run", "analogsim.runner.grid",
            "analogsim.data.registry", "hostile.harness"]


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def _hog() -> int:
    blocks = []
    while True:
        blocks.append(bytearray(50 * 2**20))


def _spin() -> int:
    while True:
        pass


def _child(argv: list[str], err_path: str) -> None:
    code = 99
    try:
        base = _vm_size()
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_S, CPU_S + 1))
        resource.setrlimit(resource.RLIMIT_AS, (base + MEMORY, base + MEMORY))
        signal.alarm(WALL_S)
        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        try:
            if argv == ["<hog>"]:
                code = _hog()
            elif argv == ["<spin>"]:
                code = _spin()
            else:
                from analogsim.cli import main

                code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - what the tests must never see
            traceback.print_exc()
            code = 98
        sys.stderr.flush()
        Path(f"{err_path}.code").write_text(str(code))  # the status, also where the fork
    finally:                                             # server fails to report it
        os._exit(code)


_CTX: multiprocessing.context.BaseContext | None = None


def _context() -> multiprocessing.context.BaseContext:
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(_PRELOAD)
    return _CTX


def run_capped(argv: list[str], err_path: Path) -> tuple[int | None, int | None, float]:
    """``analogsim ARGV`` (or ``["<hog>"]``/``["<spin>"]``, the harness's own runaways) in a
    capped child; its stderr goes to ``err_path``. Returns (exit status or None, killing
    signal or None, wall seconds)."""
    t0 = time.perf_counter()
    proc = _context().Process(target=_child, args=(argv, str(err_path)))
    proc.start()
    proc.join(WALL_S + 10)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
    wall = time.perf_counter() - t0
    code = proc.exitcode
    assert code is not None
    written = Path(f"{err_path}.code")
    if code == 255 and written.is_file():  # the server lost the status (EOF on its pipe)
        code = int(written.read_text())
    written.unlink(missing_ok=True)
    return (None, -code, wall) if code < 0 else (code, None, wall)
