"""Training one cell: build its network on its device, train it on its timeline, measure.

``run_job`` is what every executor calls (in this process, a spawned worker or a Ray task);
it returns the cell's records — or, for a search job, its group's η search rows — and never
writes files. Host syncs happen only at evaluations and the rule's own periodic divergence
check — never inside a training step.

The η search and every choice made while training read the validation split only; the test
split is evaluated solely for the reported ``test_*`` columns (``CellRunner.test`` is read
in ``_metrics`` with ``test=True`` and nowhere else).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.analog import numerics, on_device, refresh
from analogsim.clock import SimClock
from analogsim.config.scenario import Scenario
from analogsim.data import Dataset
from analogsim.errors import DivergenceError
from analogsim.rules import make, per_sample_loss
from analogsim.rules.align import alignment
from analogsim.rules.lr_search import grid_search_lr
from analogsim.runner.build import derive_seed, device_network
from analogsim.runner.data import load_splits
from analogsim.runner.grid import Cell
from analogsim.runner.lr_store import append_trial
from analogsim.runner.records import row
from analogsim.runner.timeline import Timeline


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to run one cell (picklable)."""

    scenario: Scenario
    cell: Cell
    n_cells: int  # size of the grid, for progress lines
    device: str = "cpu"
    threads: int = 1  # torch CPU threads; the same count gives the same numbers on CPU
    verbose: bool = True
    search: bool = False  # run the η search of the cell's group instead of the cell
    # a search: the search file each trial is appended to as it ends (None: returned only),
    # and the rows of trials an interrupted run of this search finished (their η not rerun)
    search_file: str | None = None
    prior_trials: tuple[dict[str, Any], ...] = ()
    # the run's recorded fast paths (``numerics: fast``), taken instead of this worker's races
    paths: dict[str, bool] | None = None


@dataclass(frozen=True)
class CellResult:
    """A finished cell: its records (summary last), status and wall time."""

    cell_id: str
    rows: list[dict[str, Any]]
    status: str  # "done" | "diverged" | "searched" (a search job)
    wall_s: float
    summary: str = ""


@dataclass
class _Tensors:
    """A split on the torch device: inputs (N, …), targets (N, K), labels (N,) or None."""

    x: Tensor
    y: Tensor
    labels: Tensor | None

    @classmethod
    def of(cls, ds: Dataset, device: torch.device, n: int | None = None) -> _Tensors:
        sl = slice(None) if n is None else slice(0, n)
        labels = None if ds.labels is None else ds.labels[sl].to(device)
        return cls(ds.x[sl].to(device), ds.y[sl].to(device), labels)

    def __len__(self) -> int:
        return int(self.x.shape[0])


def evaluate(net: nn.Module, data: _Tensors, batch: int, loss: str,
             n_reps: int = 1) -> tuple[float, float | None]:
    """Mean per-sample loss and accuracy (None for regression) of ``net`` on ``data``, as the
    chip computes it now (device noise included), averaged over ``n_reps`` full passes, each
    reading the chip afresh. One host sync."""
    dev = data.x.device
    total = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.float64, device=dev)
    with torch.no_grad():
        for _ in range(n_reps):
            for i in range(0, len(data), batch):
                out = net(data.x[i:i + batch])  # (b, K)
                total += per_sample_loss(out, data.y[i:i + batch], loss).double().sum()
                if data.labels is not None:
                    correct += (out.argmax(1) == data.labels[i:i + batch]).double().sum()
    mean_loss, acc = (torch.stack([total, correct]) / (n_reps * len(data))).tolist()
    return mean_loss, (acc if data.labels is not None else None)


def base_record(scenario: Scenario, cell: Cell) -> dict[str, Any]:
    """The columns every row of ``cell`` shares."""
    return {"scenario": scenario.name, "cell": cell.id, "cell_index": cell.index,
            "profile": cell.variant.name, "profile_label": cell.variant.label,
            "sweep_field": cell.variant.sweep_field, "sweep_value": cell.variant.sweep_value,
            "rule": cell.rule.name, "rule_label": cell.rule_label, "baseline": cell.baseline,
            "seed": cell.seed, "lr": cell.lr}


@dataclass
class _Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    diverged: DivergenceError | None = None
    last: dict[str, Any] = field(default_factory=dict)  # the last evaluation's metrics
    epoch: int | None = None  # the epoch in which training diverged
    steps: int = 0  # training steps taken


class CellRunner:
    """Trains and measures one cell (also the η search's trial runs of it)."""

    def __init__(self, job: CellJob) -> None:
        self.job = job
        self.sc = job.scenario
        self.cell = job.cell
        self.dev = torch.device(job.device)
        train, val, test = load_splits(self.sc.dataset, self.sc.folder,
                                       self.sc.model.kind == "mlp")
        self.shape, self.n_out = train.input_shape, train.n_outputs
        self.train = _Tensors.of(train, self.dev)
        self.train_eval = _Tensors.of(train, self.dev, self.sc.evaluation.train_samples)
        self.val = None if val is None else _Tensors.of(val, self.dev)
        self.test = _Tensors.of(test, self.dev)
        self.base = base_record(self.sc, self.cell)
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------------ helpers
    def log(self, msg: str) -> None:
        if self.job.verbose:
            sys.stderr.write(f"  {self.cell.id}: "
                             f"{msg} ({time.perf_counter() - self.t0:.1f} s)\n")
            sys.stderr.flush()

    def network(self, clock: SimClock, model_seed: int, device_seed: int) -> nn.Module:
        return device_network(self.sc.model, self.shape, self.n_out, self.cell.variant.profile,
                              clock, self.dev, model_seed, device_seed, self.sc.numerics)

    def _batches(self, gen: torch.Generator) -> Iterator[Tensor]:
        n, b = len(self.train), self.sc.batch_size
        perm = torch.randperm(n, generator=gen).to(self.dev)
        stop = n - n % b if self.sc.drop_last and n >= b else n
        for i in range(0, stop, b):
            yield perm[i:i + b]

    def _metrics(self, net: nn.Module, train_too: bool, test: bool = True) -> dict[str, Any]:
        """Metrics on the validation split (if any), the test split (``test``) and the first
        train samples (``train_too``), each averaged over ``evaluation.n_reps`` reads."""
        ev, loss = self.sc.evaluation, self.cell.rule.loss
        out: dict[str, Any] = {}
        if self.val is not None:
            out["val_loss"], out["val_accuracy"] = evaluate(net, self.val, ev.batch_size, loss,
                                                            ev.n_reps)
        if test:
            out["test_loss"], out["test_accuracy"] = evaluate(net, self.test, ev.batch_size,
                                                              loss, ev.n_reps)
        if train_too:
            tr_loss, tr_acc = evaluate(net, self.train_eval, ev.batch_size, loss, ev.n_reps)
            out.update(train_loss=tr_loss, train_accuracy=tr_acc)
        return out

    # ------------------------------------------------------------------ training
    def steps_per_epoch(self) -> int:
        n, b = len(self.train), self.sc.batch_size
        return n // b if self.sc.drop_last and n >= b else math.ceil(n / b)

    def fit(self, lr: float, epochs: int, curves: bool, inference: bool,
            max_steps: int | None = None, test: bool = True) -> _Outcome:
        """Train a fresh network of this cell with η = ``lr`` for ``epochs``.

        ``curves``: a row per scheduled evaluation (else only the final metrics);
        ``inference``: then the timeline's evaluations after programming; ``max_steps``: stop
        after this many steps (in the last epoch); ``test``: evaluate the test split too
        (off for η-search trials, which read the validation split only).
        """
        seed, sc = self.cell.seed, self.sc
        clock = SimClock()
        net = self.network(clock, derive_seed(seed, "model"), derive_seed(seed, "device"))
        rule = make(self.cell.rule.model_copy(
            update={"seed": derive_seed(seed, "rule", self.cell.rule.seed)}))
        opt = on_device(torch.optim.SGD(net.parameters(), lr=lr), net)
        shuffle = torch.Generator().manual_seed(derive_seed(seed, "shuffle"))
        timeline = Timeline(clock, sc.timeline)
        out = _Outcome()
        state = {"epoch": 0, "steps": 0, "since_eval": 0}
        loss_sum = torch.zeros((), device=self.dev)
        base = {**self.base, "lr": lr}

        def step(idx: Tensor) -> None:
            nonlocal loss_sum
            loss = rule.fill_grads(net, self.train.x[idx], self.train.y[idx])
            opt.step()
            loss_sum = loss_sum + loss.detach()
            state["steps"] += 1
            state["since_eval"] += 1

        def record_epoch(epoch: int) -> None:
            nonlocal loss_sum
            m = self._metrics(net, train_too=curves, test=test)
            if state["since_eval"]:
                m["step_loss"] = float(loss_sum) / state["since_eval"]
            loss_sum = torch.zeros((), device=self.dev)
            state["since_eval"] = 0
            out.last = m
            if curves:
                out.rows.append(row(base, kind="epoch", epoch=epoch, step=state["steps"],
                                    device_time_s=clock.now, diverged=False, **m))

        def batches(epoch: int) -> Iterator[Tensor]:
            state["epoch"] = epoch
            for idx in self._batches(shuffle):
                if max_steps is not None and state["steps"] >= max_steps:
                    return
                yield idx

        def end_epoch(epoch: int) -> None:
            rule.guard.check()
            if curves and (epoch % sc.evaluation.every_epochs == 0 or epoch == epochs):
                record_epoch(epoch)
                if epoch % max(1, epochs // 4) == 0 or epoch == epochs:
                    self.log(f"epoch {epoch}/{epochs} {_fmt_metrics(out.last)}")
            elif not curves and epoch == epochs:
                record_epoch(epoch)

        def evaluate_after(t: float) -> None:
            m = self._metrics(net, train_too=False)
            out.rows.append(row(base, kind="inference", epoch=epochs, step=state["steps"],
                                device_time_s=clock.now, after_programming_s=t,
                                since_programming_s=timeline.since_programming_s,
                                diverged=False, **m))

        if curves:
            record_epoch(0)
        try:
            timeline.run(timeline.training(epochs, batches, step, end_epoch),
                         evaluate_after if inference else None, lambda: refresh(net))
        except DivergenceError as err:
            out.diverged, out.epoch = err, state["epoch"]
            out.steps = state["steps"]
            if curves:
                out.rows.append(row(base, kind="epoch", epoch=state["epoch"], step=err.step,
                                    device_time_s=clock.now, diverged=True))
        else:
            out.steps = state["steps"]
        return out

    def search(self) -> list[dict[str, Any]]:
        """The η search of this cell's group (``scenario.lr_search``) on this cell's seed:
        trial runs on the coarse then the refined log grid, each judged by its final
        validation metric (accuracy, or −loss). Returns a row per trial, then the choice."""
        spec = self.sc.lr_search
        if spec is None or self.val is None:
            raise ValueError("the η search needs lr_search and a validation split")
        if spec.steps is not None:
            epochs, steps = math.ceil(spec.steps / self.steps_per_epoch()), spec.steps
        else:
            assert spec.epochs is not None
            epochs, steps = spec.epochs, None
        base = {**self.base, "cell": f"{self.cell.group}/search"}
        rows: list[dict[str, Any]] = []
        prior = list(self.job.prior_trials)

        def trial(lr: float) -> float:
            done = next((r for r in prior if math.isclose(r["lr"], lr, rel_tol=1e-12)), None)
            if done is not None:  # finished by an interrupted run: the same run, recorded
                prior.remove(done)
                rows.append(done)
                if done["diverged"]:
                    self.log(f"η search: η={lr:.3g} diverged (recorded)")
                    raise DivergenceError(done["step"], "recorded trial")
                self.log(f"η search: η={lr:.3g} {_fmt_metrics(done, 'val')} (recorded)")
            else:
                res = self.fit(lr, epochs, curves=False, inference=False, max_steps=steps,
                               test=False)
                m = res.last if res.diverged is None else {}
                rows.append(row({**base, "lr": lr}, kind="lr_trial",
                                epoch=epochs if res.diverged is None else res.epoch,
                                step=res.steps if res.diverged is None else res.diverged.step,
                                diverged=res.diverged is not None, **m))
                if self.job.search_file is not None:
                    append_trial(self.job.search_file, rows[-1])
                self.log(f"η search: η={lr:.3g} {_fmt_metrics(m, 'val')}")
                if res.diverged is not None:
                    raise res.diverged
            return _score(m if done is None else done)

        found = grid_search_lr(trial, spec.low, spec.high, spec.points, spec.refine)
        if not math.isfinite(found.best_metric):
            self.log("η search: every trial diverged; choosing the smallest η")
        best = next((r for r in rows if math.isclose(r["lr"], found.best_lr, rel_tol=1e-12)),
                    {})
        rows.append(row({**base, "lr": found.best_lr}, kind="lr_choice", epoch=epochs,
                        diverged=not math.isfinite(found.best_metric),
                        val_loss=best.get("val_loss"), val_accuracy=best.get("val_accuracy")))
        return rows

    def alignment_rows(self) -> list[dict[str, Any]]:
        """Angles of this cell's rule to BP per layer on fresh untrained networks."""
        spec = self.sc.alignment
        assert spec is not None
        seed = self.cell.seed
        g = torch.Generator().manual_seed(derive_seed(seed, "alignment"))
        idx = torch.randperm(len(self.train), generator=g)[:spec.batch_size].to(self.dev)

        def factory(rep: int) -> nn.Module:
            return self.network(SimClock(), derive_seed(seed, "alignment", rep, 0),
                                derive_seed(seed, "alignment", rep, 1))

        rule = self.cell.rule.model_copy(
            update={"seed": derive_seed(seed, "alignment", self.cell.rule.seed, 2)})
        res = next(iter(alignment(factory, self.train.x[idx], self.train.y[idx], [rule],
                                  repeats=spec.repeats).values()))
        return [row(self.base, kind="alignment", epoch=0, layer=i + 1, angle_deg=m,
                    angle_sem_deg=s, diverged=False)
                for i, (m, s) in enumerate(zip(res.mean(), res.sem(), strict=True))]

    def run(self) -> CellResult:
        if self.job.search:
            rows = self.search()
            summary = f"η search: chose η={rows[-1]['lr']:.3g}"
            self.log(summary)
            return CellResult(self.cell.group, rows, "searched",
                              time.perf_counter() - self.t0, summary)
        rows: list[dict[str, Any]] = []
        lr = self.cell.lr
        if lr is None:
            raise ValueError(f"cell {self.cell.id} has no η: run its group's search first")
        self.base["lr"] = lr
        if self.sc.alignment is not None and self.cell.rule.base != "bp":
            rows += self.alignment_rows()
        res = self.fit(lr, self.sc.epochs, curves=True, inference=True)
        rows += res.rows
        err = res.diverged
        status = "diverged" if err is not None else "done"
        final = {k: v for k, v in res.last.items() if k != "step_loss"} if err is None else {}
        rows.append(row(self.base, kind="cell", epoch=self.sc.epochs if err is None else res.epoch,
                        status=status, diverged=err is not None,
                        diverged_at_step=None if err is None else err.step,
                        diverged_what=None if err is None else err.what, **final))
        summary = (f"diverged at step {err.step} ({err.what})" if err is not None
                   else _fmt_metrics(res.last))
        self.log(summary)
        return CellResult(self.cell.id, rows, status, time.perf_counter() - self.t0, summary)


def _score(m: dict[str, Any]) -> float:
    """A trial's search score from its validation metrics: the accuracy, or −loss (a loss
    that was not finite — stored as None in a recorded row — scores −inf)."""
    acc = m.get("val_accuracy")
    if acc is not None:
        return float(acc)
    loss = m.get("val_loss")
    return -math.inf if loss is None else -float(loss)


def _fmt_metrics(m: dict[str, Any], split: str = "test") -> str:
    if not m:
        return "diverged"
    if m.get(f"{split}_accuracy") is not None:
        return f"{split} acc {m[f'{split}_accuracy']:.3f}"
    if m.get(f"{split}_loss") is not None:
        return f"{split} loss {m[f'{split}_loss']:.4g}"
    return f"{split} metrics not finite"


def run_job(job: CellJob) -> CellResult:
    """Run one cell with ``job.threads`` torch CPU threads; the executors' entry point."""
    torch.set_num_threads(job.threads)
    with numerics.fixed_paths(torch.device(job.device).type, job.paths):
        return CellRunner(job).run()
