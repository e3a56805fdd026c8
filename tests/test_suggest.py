"""A misspelt field or choice in a YAML file gets a "did you mean" on its error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from analogsim.cli import main
from analogsim.config.profile import DeviceProfile
from analogsim.config.scenario import Scenario
from analogsim.config.suggest import did_you_mean, fields_at
from analogsim.config.yaml_io import validate
from analogsim.errors import ConfigError


def test_did_you_mean() -> None:
    assert did_you_mean("epoks", ["epochs", "seeds"]) == "; did you mean 'epochs'?"
    assert did_you_mean("dnap", ["np", "dnp", "danp", "bp"]) == "; did you mean 'dnp' or 'danp'?"
    assert did_you_mean("zzz", ["epochs"]) == "" and did_you_mean(3, ["epochs"]) == ""


def test_fields_at_walks_nested_models_lists_and_tagged_unions() -> None:
    assert "step_s" in fields_at(Scenario, ("timeline",))
    assert "sigma" in fields_at(Scenario, ("rules", 0))
    assert "dw_min" in fields_at(DeviceProfile, ("update", "pulsed"))
    assert "epochs" in fields_at(Scenario, ())


def test_profile_and_scenario_errors_suggest(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError) as err:
        validate(DeviceProfile, {"name": "x", "source": "y", "drift": {"enabld": True}},
                 "p.yaml", ConfigError)
    assert str(err.value) == ("p.yaml: drift.enabld: unknown field (got True); "
                              "did you mean 'enabled'?")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ndataset: digits\nprofiles: [ideal]\nrules: [dnap]\n"
                        "seeds: [0]\nepoks: 1\nbatch_size: 10\n")
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 2
    err_text = capsys.readouterr().err
    assert "s.yaml: rules.0: Input should be" in err_text
    assert "(got 'dnap'); did you mean 'dnp' or" in err_text
    assert "epoks: unknown field (got 1); did you mean 'epochs'?" in err_text
    assert "Traceback" not in err_text


def test_misspelt_required_field_is_one_line_not_also_missing(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ndataset: digits\nprofiles: [ideal]\nrules: [np]\n"
                        "seeds: [0]\nepcohs: 1\nbatch_size: 10\n")
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"error: {scenario}: epcohs: unknown field (got 1); did you mean 'epochs'?"]
    assert not (tmp_path / "out").exists()
    # a required field missing with no misspelling beside it is still reported
    scenario.write_text("name: s\ndataset: digits\nprofiles: [ideal]\nrules: [np]\n"
                        "seeds: [0]\nbatch_size: 10\ncolour: red\n")
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {scenario}: ") for line in lines)
    assert any("epochs: Field required" in line for line in lines)
