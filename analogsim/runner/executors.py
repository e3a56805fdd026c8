"""Where cells run: this process, spawned local processes, or Ray tasks.

Every executor takes the pending ``CellJob``s and calls ``on_done(result)`` in the
coordinating process as each cell finishes (the coordinator alone writes records), and
``on_error(job, message)`` for a cell that raised something other than a divergence (the
grid goes on; the cell stays unfinished and a resumed run retries it). ``on_done`` returns
the jobs that result makes ready (the cells of a finished η search); they join the queue at
once, so a free worker never waits for an unrelated search. Jobs start in the order queued.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from analogsim.errors import AnalogsimError, ScenarioError
from analogsim.runner.cell import CellJob, CellResult, run_job

OnDone = Callable[[CellResult], Sequence[CellJob]]  # returns the jobs it makes ready
OnError = Callable[[CellJob, str], None]


def _describe(err: BaseException) -> str:
    if isinstance(err, AnalogsimError):
        return str(err)
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(err).__name__}: {err}{where}"


def run_inline(jobs: Sequence[CellJob], on_done: OnDone, on_error: OnError) -> None:
    """One cell after another in this process."""
    queue = deque(jobs)
    while queue:
        job = queue.popleft()
        try:
            result = run_job(job)
        except Exception as err:  # noqa: BLE001 - reported per cell, the grid goes on
            on_error(job, _describe(err))
        else:
            queue.extend(on_done(result))


def run_local(jobs: Sequence[CellJob], n_workers: int, on_done: OnDone,
              on_error: OnError) -> None:
    """Cells on ``n_workers`` spawned processes (fresh interpreters: no forked torch state).
    ``n_workers`` should count the follow-up jobs too: the pool does not grow."""
    if n_workers <= 1:
        run_inline(jobs, on_done, on_error)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
        pending: dict[Future[CellResult], CellJob] = {pool.submit(run_job, j): j for j in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                err = fut.exception()
                if err is not None:
                    on_error(job, _describe(err))
                else:
                    for nxt in on_done(fut.result()):
                        pending[pool.submit(run_job, nxt)] = nxt


def run_ray(jobs: Sequence[CellJob], n_parallel: int | None, on_done: OnDone,
            on_error: OnError, address: str | None = None) -> None:
    """Cells as Ray tasks on a running cluster (``address`` or $RAY_ADDRESS) or a local
    instance started here. CPU cells ask for ``job.threads`` CPUs each; CUDA cells for
    1/``n_parallel`` GPU each (so ``n_parallel`` cells share a GPU; 1 when not given)."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ScenarioError("the ray executor needs Ray: pip install 'analogsim[ray]' "
                            "(or use --executor local)") from None
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, object] = {"include_dashboard": False, "log_to_driver": True}
        if address is None and n_parallel is not None:
            kwargs["num_cpus"] = max(n_parallel * max(j.threads for j in jobs), 1)
        ray.init(address=address, **kwargs)
        started = True
    try:
        remote = ray.remote(run_job)
        pending = {}

        def submit(job: CellJob) -> None:
            if job.device == "cuda":
                opts = {"num_gpus": 1.0 / max(1, n_parallel or 1), "num_cpus": 1}
            else:
                opts = {"num_cpus": job.threads}
            pending[remote.options(**opts).remote(job)] = job

        for job in jobs:
            submit(job)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - reported per cell
                    cause = getattr(err, "cause", None) or err
                    on_error(job, _describe(cause))
                else:
                    for nxt in on_done(result):
                        submit(nxt)
    finally:
        if started:
            ray.shutdown()
