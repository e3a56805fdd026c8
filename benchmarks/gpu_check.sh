#!/usr/bin/env bash
# GPU checks on a CUDA machine, under 8 minutes: the device-parametrized tests (CUDA included,
# the compiled device math on CUDA among them), then every GPU figure of docs/performance.md:
# the forward ratio (last line of analog_forward.py), the step costs (danp/dbp, the write and
# refresh against a BP step), the scaling table on CUDA, and the forward on that machine's CPU.
#   bash benchmarks/gpu_check.sh            (from the repository root)
# Wheels in .whl/ (pydantic, simpy, … for a machine that lacks them) are installed first.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
PY
status=0
python3 -m pytest -q -p no:cacheprovider tests/test_layers.py tests/test_physics.py tests/test_device_physics.py tests/test_tile.py \
  tests/test_rules.py tests/test_profiles.py tests/test_fused.py tests/test_counter_normals.py || status=1
python3 benchmarks/analog_forward.py --device cuda || status=1
python3 benchmarks/step_cost.py --device cuda || status=1
python3 benchmarks/scaling.py --device cuda --widths 1024 4096 --batches 1000 4000 || status=1
python3 benchmarks/analog_forward.py --device cpu || status=1
exit $status
