"""Imported by the benchmark scripts before torch: OpenMP's idle threads as ``import
analogsim`` sets them when it comes first (see analogsim/__init__.py and
analogsim/analog/normals.py) — the user's own settings win."""

import os

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
