"""``analogsim report --html``: one self-contained page per results folder, checked as text and
rendered in headless Chromium (all images load, tables present, no console errors)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from analogsim.cli import main
from analogsim.report.html import claim_checks, markdown_table
from analogsim.report.paper import load_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with DANP and DNP on two profiles, two seeds, plots and summary written."""
    base = yaml.safe_load((ROOT / "tests" / "scenarios" / "tiny.yaml").read_text())
    base.update(name="tiny_html", rules=["danp", "dnp"], lr={"danp": 0.01, "dnp": 0.01},
                epochs=2)
    base.pop("alignment", None)
    folder = tmp_path_factory.mktemp("html")
    sc = folder / "tiny_html.yaml"
    sc.write_text(yaml.safe_dump(base))
    out = folder / "out"
    assert main(["run", str(sc), "--out", str(out), "--jobs", "1", "--threads", "1",
                 "--quiet"]) == 0
    assert main(["report", str(out), "--html"]) == 0
    return out


def test_page_holds_scenario_manifest_tables_plots_and_claims(results: Path) -> None:
    page = (results / "report.html").read_text()
    pngs = sorted(results.glob("*.png"))
    assert pngs and page.count('src="data:image/png;base64,') == len(pngs)
    assert "src=\"http" not in page and "href=\"http" not in page  # self-contained
    man = json.loads((results / "manifest.json").read_text())
    assert man["hash"] in page and "numerics" in page and '"exact"' in page.replace("&quot;", '"')
    assert page.count("<table") >= 4  # results, claims, manifest, versions
    assert "DANP (noisy) beats DNP (noisy) on pcm" in page
    checks = claim_checks(load_run(results))  # type: ignore[arg-type]
    assert {c["claim"] for c in checks} == {"DANP (noisy) beats DNP (noisy) on ideal",
                                           "DANP (noisy) beats DNP (noisy) on pcm"}
    # two seeds are too few to judge: the verdict says so rather than guessing
    assert all(c["verdict"] in ("not resolved at this scale", "not measured") for c in checks)
    # η was given and two epochs are too short for a trend: no evidence on why, said as nothing
    assert "why (where it does not hold)" in page and all(c["why"] == "" for c in checks)


def test_markdown_table_to_html() -> None:
    html = markdown_table("text\n\n| a | b |\n|---|---|\n| 1 | <x> |\n")
    assert html == ("<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td>"
                    "<td>&lt;x&gt;</td></tr></tbody></table>")
    assert markdown_table("no table") == ""


def test_report_of_a_folder_without_manifest_is_one_line(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path), "--html"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "manifest.json" in err[0]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium); "
                                             ".ci/run installs it")
def test_page_renders_in_headless_chromium(results: Path, tmp_path: Path) -> None:
    harness = tmp_path / "harness.html"
    harness.write_text(f"""<!doctype html><html><head><meta charset="utf-8"></head><body>
<iframe id="f" src="{(results / 'report.html').as_uri()}" width="1200" height="800"></iframe>
<pre id="out">pending</pre><script>
document.getElementById('f').addEventListener('load', () => {{
  const d = document.getElementById('f').contentDocument;
  const imgs = Array.from(d.images);
  document.getElementById('out').textContent = JSON.stringify({{images: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    tables: d.querySelectorAll('table').length, title: d.title}});
}});
</script></body></html>""")
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--allow-file-access-from-files", "--virtual-time-budget=5000",
         "--enable-logging=stderr", "--v=0", "--dump-dom", harness.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="out">([^<]*)</pre>', proc.stdout)
    assert found, proc.stderr[-2000:]
    seen = json.loads(found.group(1))
    n_png = len(list(results.glob("*.png")))
    assert seen["images"] == n_png and seen["loaded"] == n_png
    assert seen["tables"] >= 4 and "tiny_html" in seen["title"]
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console
