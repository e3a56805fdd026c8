"""Training one cell: build its network on its device, train it on its timeline, measure.

``run_job`` is what every executor calls (in this process, a spawned worker or a Ray task);
it returns the cell's records and never writes files. Host syncs happen only at evaluations
and the rule's own periodic divergence check — never inside a training step.
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

from analogsim.analog import on_device, program
from analogsim.clock import SimClock
from analogsim.config.scenario import Scenario
from analogsim.data import Dataset
from analogsim.errors import DivergenceError
from analogsim.rules import make, per_sample_loss
from analogsim.rules.align import alignment
from analogsim.rules.lr_search import search_lr
from analogsim.runner.build import derive_seed, device_network
from analogsim.runner.data import load_splits
from analogsim.runner.grid import Cell
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


@dataclass(frozen=True)
class CellResult:
    """A finished cell: its records (summary last), status and wall time."""

    cell_id: str
    rows: list[dict[str, Any]]
    status: str  # "done" | "diverged"
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


def evaluate(net: nn.Module, data: _Tensors, batch: int, loss: str) -> tuple[float, float | None]:
    """Mean per-sample loss and accuracy (None for regression) of ``net`` on ``data``, as the
    chip computes it now (device noise included). One host sync."""
    dev = data.x.device
    total = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.float64, device=dev)
    with torch.no_grad():
        for i in range(0, len(data), batch):
            out = net(data.x[i:i + batch])  # (b, K)
            total += per_sample_loss(out, data.y[i:i + batch], loss).double().sum()
            if data.labels is not None:
                correct += (out.argmax(1) == data.labels[i:i + batch]).double().sum()
    mean_loss, acc = (torch.stack([total, correct]) / len(data)).tolist()
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


class CellRunner:
    """Trains and measures one cell (also the η search's trial runs of it)."""

    def __init__(self, job: CellJob) -> None:
        self.job = job
        self.sc = job.scenario
        self.cell = job.cell
        self.dev = torch.device(job.device)
        train, test = load_splits(self.sc.dataset, self.sc.folder, self.sc.model.kind == "mlp")
        self.shape, self.n_out = train.input_shape, train.n_outputs
        self.train = _Tensors.of(train, self.dev)
        self.train_eval = _Tensors.of(train, self.dev, self.sc.evaluation.train_samples)
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
                              clock, self.dev, model_seed, device_seed)

    def _batches(self, gen: torch.Generator) -> Iterator[Tensor]:
        n, b = len(self.train), self.sc.batch_size
        perm = torch.randperm(n, generator=gen).to(self.dev)
        stop = n - n % b if self.sc.drop_last and n >= b else n
        for i in range(0, stop, b):
            yield perm[i:i + b]

    def _metrics(self, net: nn.Module, train_too: bool) -> dict[str, Any]:
        ev, loss = self.sc.evaluation, self.cell.rule.loss
        te_loss, te_acc = evaluate(net, self.test, ev.batch_size, loss)
        out: dict[str, Any] = {"test_loss": te_loss, "test_accuracy": te_acc}
        if train_too:
            tr_loss, tr_acc = evaluate(net, self.train_eval, ev.batch_size, loss)
            out.update(train_loss=tr_loss, train_accuracy=tr_acc)
        return out

    # ------------------------------------------------------------------ training
    def fit(self, lr: float, epochs: int, curves: bool, inference: bool) -> _Outcome:
        """Train a fresh network of this cell with η = ``lr`` for ``epochs``.

        ``curves``: a row per scheduled evaluation (else only the final test metrics);
        ``inference``: then the timeline's evaluations after programming.
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
            m = self._metrics(net, train_too=curves)
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
            return self._batches(shuffle)

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
                         evaluate_after if inference else None, lambda: program(net))
        except DivergenceError as err:
            out.diverged, out.epoch = err, state["epoch"]
            if curves:
                out.rows.append(row(base, kind="epoch", epoch=state["epoch"], step=err.step,
                                    device_time_s=clock.now, diverged=True))
        return out

    def search_lr(self) -> tuple[float, list[dict[str, Any]]]:
        """The paper's η search on short trial runs of this cell; (best η, trial rows)."""
        spec = self.sc.lr_search
        assert spec is not None
        trials: list[dict[str, Any]] = []

        def trial(lr: float) -> float:
            res = self.fit(lr, spec.epochs, curves=False, inference=False)
            m = res.last if res.diverged is None else {}
            trials.append(row({**self.base, "lr": lr}, kind="lr_trial", epoch=spec.epochs,
                              diverged=res.diverged is not None, **m))
            self.log(f"η search: η={lr:.3g} {_fmt_metrics(m)}")
            if res.diverged is not None:
                raise res.diverged
            acc = m.get("test_accuracy")
            return acc if acc is not None else -m["test_loss"]

        found = search_lr(trial, spec.start, spec.factor, spec.max_steps, spec.patience)
        if not math.isfinite(found.best_metric):
            self.log("η search: every trial diverged; training at the first η")
        return found.best_lr, trials

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
        rows: list[dict[str, Any]] = []
        lr = self.cell.lr
        if lr is None:
            lr, trials = self.search_lr()
            rows += trials
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


def _fmt_metrics(m: dict[str, Any]) -> str:
    if not m:
        return "diverged"
    if m.get("test_accuracy") is not None:
        return f"test acc {m['test_accuracy']:.3f}"
    return f"test loss {m['test_loss']:.4g}"


def run_job(job: CellJob) -> CellResult:
    """Run one cell with ``job.threads`` torch CPU threads; the executors' entry point."""
    torch.set_num_threads(job.threads)
    return CellRunner(job).run()
