"""Device profiles: shipped ones validate; bad input gives one clear line per problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analogsim import load_profile
from analogsim.cli import main
from analogsim.config.profile import shipped_profiles
from analogsim.errors import ProfileError

SHIPPED = ["ideal", "pcm", "rram", "low_precision", "noisy_nodes"]


def test_shipped_profiles_load_and_cite_sources() -> None:
    assert set(SHIPPED) <= set(shipped_profiles())
    for name in SHIPPED:
        p = load_profile(name)
        assert p.name == name and p.source.strip()
    assert load_profile("ideal").is_ideal
    assert not any(load_profile(n).is_ideal for n in SHIPPED[1:])


def test_pcm_numbers_are_the_published_model() -> None:
    p = load_profile("pcm")
    assert p.programming.sigma_poly_uS == [0.26348, 1.9650, -1.1731]
    assert (p.drift.nu_mean.ln_slope, p.drift.nu_mean.intercept) == (-0.0155, 0.0244)
    assert (p.drift.nu_std.min, p.drift.nu_std.max) == (0.008, 0.045)
    assert p.drift.t0_s == 20.0 and p.read_noise.t_read_s == 2.5e-7
    assert p.mapping.g_max_uS == 25.0


@pytest.mark.parametrize(("body", "field"), [
    ("name: x\nsource: s\nread_noise: {q_coeff: 0.1, colour: red}\n", "read_noise.colour"),
    ("name: x\nsource: s\nread_noise: {q_coeff: -0.1}\n", "read_noise.q_coeff"),
    ("name: x\nsource: s\nadc: {bits: eight, output_bound: 1}\n", "adc.bits"),
    ("name: x\nsource: s\nupdate: {kind: magic}\n", "update"),
    ("name: x\n", "source"),
])
def test_bad_profile_names_file_and_field(tmp_path: Path, body: str, field: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(ProfileError) as err:
        load_profile(f)
    msg = str(err.value)
    assert str(f) in msg and field in msg


def test_missing_profile_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="file not found"):
        load_profile(tmp_path / "nope.yaml")
    with pytest.raises(ProfileError, match="shipped: .*pcm"):
        load_profile("no_such_device")


def test_cli_validate_one_line_per_error_no_traceback(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsource: s\nread_noise: {q_coeff: -1}\nfaults: {oops: 1}\n")
    rc = main(["devices", "validate", str(bad), str(tmp_path / "missing.yaml"),
               "devices/pcm.yaml"])
    out, err = capsys.readouterr()
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(str(tmp_path) in ln for ln in lines)
    assert "read_noise.q_coeff" in err and "faults.oops: unknown field" in err
    assert "Traceback" not in err and "devices/pcm.yaml: ok" in out


def test_cli_process_exit_code_and_show() -> None:
    r = subprocess.run([sys.executable, "-m", "analogsim.cli", "devices", "validate",
                        "/nonexistent/x.yaml"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: /nonexistent/x.yaml: file not found"
    r = subprocess.run([sys.executable, "-m", "analogsim.cli", "devices", "show", "pcm"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "g_max_uS: 25.0" in r.stdout


def test_with_field_validates() -> None:
    p = load_profile("pcm").with_field("adc.bits", 4)
    assert p.adc.bits == 4
    with pytest.raises(ProfileError, match="adc.nope"):
        load_profile("pcm").with_field("adc.nope", 1)
    with pytest.raises(ProfileError, match="read_noise.q_coeff"):
        load_profile("pcm").with_field("read_noise.q_coeff", -1.0)
