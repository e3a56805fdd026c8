"""One self-contained HTML page per results folder: ``report.html``.

The page holds the scenario, the manifest (versions, numerics, seeds, splits), the summary
table, every plot of the folder embedded as a data URI, and the claim checks with their
evidence. It reads the folder only; it never trains. Open it in any browser, offline.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from analogsim.report.stats import HOLDS, Run, judge, load_run, seed_values, stat
from analogsim.report.why import pair_evidence

REPORT = "report.html"

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}pre{background:#f7f7f7;padding:.75rem;overflow-x:auto;font-size:.85rem}
figure{margin:1rem 0}img{max-width:100%;border:1px solid #ddd}
.holds{color:#17663a;font-weight:600}.not{color:#a11;font-weight:600}.open{color:#7a5b00}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _kv_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def markdown_table(md: str) -> str:
    """The first pipe table of a Markdown text as an HTML table ('' if there is none)."""
    lines = [ln.strip() for ln in md.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return ""
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    head, body = cells[0], [r for r in cells[2:]]
    th = "".join(f"<th>{_e(c)}</th>" for c in head)
    tr = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>"


def _figures(folder: Path) -> str:
    out = []
    for png in sorted(folder.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        out.append(f'<figure><img alt="{_e(png.stem)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{_e(png.name)}</figcaption></figure>")
    return "".join(out) or "<p>No plots in this folder (run <code>analogsim plot</code>).</p>"


def claim_checks(run: Run) -> list[dict[str, str]]:
    """DANP against each DNP variant, per profile and baseline, on the per-seed test accuracy
    at the epoch chosen on validation (on test when the run has no validation split), judged
    by a Welch t-test at 5 % on the seed means (``stats.judge``); a check that does not hold,
    between rules of one baseline, carries the evidence on why (``why.pair_evidence``: η
    trials, the lead by epoch) under ``why``."""
    labels: dict[tuple[str, str], set[str]] = defaultdict(set)
    baseline: dict[str, str | None] = {}
    for r in run.records:
        if r["kind"] == "cell":
            labels[(r["profile_label"], r["rule"])].add(r["rule_label"])
            baseline[r["rule_label"]] = r["baseline"]
    out = []
    for (profile, rule), dnp_labels in sorted(labels.items()):
        if rule != "dnp":
            continue
        for danp_label in sorted(labels.get((profile, "danp"), ())):
            a = stat(seed_values(run, _pred(profile, danp_label)))
            for dnp_label in sorted(dnp_labels):
                b = stat(seed_values(run, _pred(profile, dnp_label)))
                check = {"claim": f"{danp_label} beats {dnp_label} on {profile}",
                         "evidence": f"{a.text()} against {b.text()} test %",
                         "verdict": judge(a, b), "why": ""}
                same = baseline[danp_label] == baseline[dnp_label]
                if check["verdict"] != HOLDS and same:
                    check["why"] = " ".join(pair_evidence(
                        run, "danp", "dnp", where=(baseline[danp_label], profile)))
                out.append(check)
    return out


def _pred(profile: str, label: str):  # type: ignore[no-untyped-def]
    return lambda r: r["profile_label"] == profile and r["rule_label"] == label


def _claims_html(run: Run) -> str:
    checks = claim_checks(run)
    if not checks:
        return "<p>No DANP-against-DNP pairs in this run.</p>"
    cls = {"holds": "holds", "does not hold": "not"}
    rows = "".join(f"<tr><td>{_e(c['claim'])}</td><td>{_e(c['evidence'])}</td>"
                   f"<td class=\"{cls.get(c['verdict'], 'open')}\">{_e(c['verdict'])}</td>"
                   f"<td>{_e(c['why'])}</td></tr>" for c in checks)
    chosen = ("on the validation split" if any(r.get("val_accuracy") is not None
                                                for r in run.records) else
              "on the test split (this run has no validation split: optimistic)")
    return (f"<p>Per seed, the test accuracy at the epoch chosen {chosen}; mean ± s.e.m. over "
            "seeds. A claim holds only when a two-sided Welch t-test at 5 % gives the "
            "difference its claimed sign (it exceeds t times the combined s.e.m.; two seeds a "
            "side at least); otherwise it is not resolved at this scale.</p>"
            f"<table><thead><tr><th>claim</th><th>evidence</th><th>verdict</th>"
            "<th>why (where it does not hold)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def render(folder: Path) -> str:
    """The report page of one results folder, as HTML text."""
    run = load_run(folder)
    if run is None:
        raise FileNotFoundError(f"{folder}: no manifest.json (not a results folder)")
    m: dict[str, Any] = run.manifest
    sc = m.get("scenario", {})
    summary = folder / "summary.md"
    table = markdown_table(summary.read_text()) if summary.is_file() else ""
    manifest_rows: list[tuple[str, object]] = [
        ("scenario file", m.get("scenario_file")), ("scenario hash", m.get("hash")),
        ("created", m.get("created")), ("updated", m.get("updated")),
        ("complete", m.get("complete")), ("device", m.get("device")),
        ("numerics", json.dumps(m.get("numerics"))), ("executor", m.get("executor")),
        ("jobs × threads", f"{m.get('jobs')} × {m.get('threads_per_cell')}"),
        ("seeds", m.get("seeds")), ("data", json.dumps(m.get("data"))),
        ("code (git commits)", ", ".join(m.get("code", [])) or "not recorded"),
    ]
    for key in ("splits", "evaluation_reps", "lr_chosen"):
        if key in m:
            manifest_rows.append((key, json.dumps(m[key])))
    versions = _kv_table(sorted((m.get("versions") or {}).items()))
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(m.get('scenario_name', folder.name))} — analogsim report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(m.get('scenario_name', folder.name))}</h1>",
        f"<p>{_e(sc.get('description', ''))}</p>",
        "<h2>Results</h2>", table or "<p>No summary table (run <code>analogsim plot</code>).</p>",
        "<h2>Claim checks</h2>", _claims_html(run),
        "<h2>Plots</h2>", _figures(folder),
        "<h2>Manifest</h2>", _kv_table(manifest_rows), "<h3>Versions</h3>", versions,
        "<h2>Scenario</h2>", f"<pre>{_e(yaml.safe_dump(sc, sort_keys=False))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write(folder: Path) -> Path:
    """Write ``folder/report.html`` (atomically) and return its path."""
    text = render(folder)
    out = folder / REPORT
    tmp = out.with_name(f".{REPORT}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
