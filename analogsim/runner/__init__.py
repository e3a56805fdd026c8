"""The scenario runner: expand a scenario into cells, run them (local processes or Ray) on
simulated device time, and record flat, resumable results.

    >>> from analogsim.runner import run_scenario
    >>> report = run_scenario("scenarios/quickstart.yaml", "results/qs", jobs=2)
"""

from analogsim.config.scenario import Scenario, load_scenario
from analogsim.runner.cell import CellJob, CellResult, run_job
from analogsim.runner.grid import Cell, Grid, ProfileVariant, plan
from analogsim.runner.records import COLUMNS, RecordStore, read_records
from analogsim.runner.run import RunReport, run_scenario
from analogsim.runner.timeline import Timeline

__all__ = ["COLUMNS", "Cell", "CellJob", "CellResult", "Grid", "ProfileVariant",
           "RecordStore", "RunReport", "Scenario", "Timeline", "load_scenario", "plan",
           "read_records", "run_job", "run_scenario"]
