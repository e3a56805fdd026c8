#!/usr/bin/env bash
# The paper's grid at full scale (scenarios/paper/*.yaml: all 60k/10k Fashion-MNIST images,
# 10 % of the training set as the validation split, batch 1000, 20 epochs, 5 seeds, η searched
# per profile × rule × baseline) on one CUDA machine, every run stopped at the budget (440 s
# by default; figures and the report take about a minute more), then a compact table. The
# grid is far longer than one budget: rerun the script to resume where it stopped. From the
# repository root:
#
#   bash benchmarks/gpu_paper.sh                  # the main grid, ~10 min budget
#   bash benchmarks/gpu_paper.sh --budget 1800 --all    # every scenario, hardware ones too
#   bash benchmarks/gpu_paper.sh --device cpu --scenarios DIR --out DIR --budget 120
#       # the same pipeline on the CPU, on scenario files of the same names in DIR (its tests
#       # run it so on tiny versions of scenarios/paper/)
#
# What runs, all at once (several cells per GPU in parallel processes: a step of the
# 784-1024³-10 net at batch 1000 takes ~8 ms on an H100 and is kernel-launch bound):
#   on the GPU: three_layer, noisy_baseline, hardware_noisy_baseline (pcm, rram,
#     low_precision, noisy_nodes), depth_6, depth_9, convnet, alignment;
#   on the CPU cores (tiny networks, faster there): single_layer, sarcos, table2_lr_*.
# --all adds the other hardware_* scenarios (far more than 10 minutes on one GPU).
# Every run stops at the budget (SIGINT, then KILL 20 s later); finished cells are on disk, so
# the table shows what finished and running the script again resumes the rest (--resume).
# Results: results/gpu_paper/<scenario>/ (+ <scenario>.log), the full report in
# results/gpu_paper/reproduction.md (analogsim report results/gpu_paper/*).
#
# Needs no installed package: PYTHONPATH is this checkout; wheels in .whl/ (pydantic, simpy,
# pyyaml, … for a machine that lacks them) are installed into /tmp/site first. Fashion-MNIST is
# looked for by analogsim's data search ($ANALOGSIM_DATA, ~/.cache/analogsim, system folders);
# if none has it, carry a copy in .data/fashion-mnist/ (the four *-ubyte.gz IDX files):
#   mkdir -p .data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz .data/fashion-mnist/
set -uo pipefail
cd "$(dirname "$0")/.."

BUDGET=440  # seconds for the runs; figures and the report take about a minute more
ALL=0
GPU=cuda
SCEN=scenarios/paper
OUT=results/gpu_paper
MAXJOBS=0  # 0: no cap on the processes per scenario
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET="$2"; shift 2 ;;
    --all) ALL=1; shift ;;
    --device) GPU="$2"; shift 2 ;;
    --scenarios) SCEN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --max-jobs) MAXJOBS="$2"; shift 2 ;;
    *) echo "usage: bash benchmarks/gpu_paper.sh [--budget SECONDS] [--all] [--device cuda|cpu] [--scenarios DIR] [--out DIR] [--max-jobs N]" >&2; exit 2 ;;
  esac
done
case "$GPU" in cuda|cpu) ;; *) echo "--device must be cuda or cpu, got $GPU" >&2; exit 2 ;; esac

if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -z "${ANALOGSIM_DATA:-}" ] && [ -d .data/fashion-mnist ]; then
  export ANALOGSIM_DATA="$PWD/.data"
fi
NEED_FMNIST=0
if grep -qs "fashion-mnist" "$SCEN"/*.yaml; then NEED_FMNIST=1; fi
GPU="$GPU" NEED_FMNIST="$NEED_FMNIST" python3 - <<'PY' || exit 1
import os, sys, torch
from analogsim.data import load
from analogsim.errors import DataError
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "", flush=True)
if os.environ["GPU"] == "cuda" and not torch.cuda.is_available():
    sys.exit("no CUDA device: this script is for a GPU machine (--device cpu runs it here)")
try:
    if os.environ["NEED_FMNIST"] == "1":
        load("fashion-mnist", "test")
except DataError as err:
    sys.exit(f"Fashion-MNIST not found: {err}\n"
             "carry it: mkdir -p .data/fashion-mnist && cp <folder with the 4 IDX .gz files>/* "
             ".data/fashion-mnist/")
PY

mkdir -p "$OUT"
T0=$(date +%s)
CORES=$(nproc)
# scenario:device:jobs (jobs = cells of that scenario in parallel processes)
RUNS=(three_layer:cuda:3 three_layer_he:cuda:3 hardware_noisy_baseline:cuda:3
      noisy_baseline:cuda:2 depth_9:cuda:2
      depth_6:cuda:1 convnet:cuda:2 alignment:cuda:1
      sarcos:cpu:4 single_layer:cpu:2 table2_lr_three_layer:cpu:1 table2_lr_single_layer:cpu:1)
if [ "$ALL" = 1 ]; then
  RUNS+=(hardware_alignment:cuda:2 hardware_single_layer:cuda:2 hardware_three_layer:cuda:4
         hardware_depth_6:cuda:2 hardware_depth_9:cuda:2 hardware_convnet:cuda:2
         hardware_sarcos:cpu:4)
fi
HAVE=()
for spec in "${RUNS[@]}"; do  # a scenario without a file in $SCEN is left out, and said so
  if [ -f "$SCEN/${spec%%:*}.yaml" ]; then HAVE+=("$spec"); else echo "no $SCEN/${spec%%:*}.yaml: left out"; fi
done
RUNS=("${HAVE[@]}")
echo "running ${#RUNS[@]} scenarios at once on $CORES CPU cores and the GPU, budget ${BUDGET} s"
PIDS=()
for spec in "${RUNS[@]}"; do
  IFS=: read -r name dev jobs <<<"$spec"
  if [ "$dev" = cuda ]; then dev=$GPU; fi
  if [ "$MAXJOBS" -gt 0 ] && [ "$jobs" -gt "$MAXJOBS" ]; then jobs=$MAXJOBS; fi
  timeout -s INT -k 20 "$BUDGET" python3 -m analogsim.cli run "$SCEN/$name.yaml" \
    --out "$OUT/$name" --device "$dev" --jobs "$jobs" --threads 1 --resume --no-plot \
    > "$OUT/$name.log" 2>&1 &
  PIDS+=($!)
done
status=0
for i in "${!PIDS[@]}"; do
  wait "${PIDS[$i]}"; rc=$?
  name=${RUNS[$i]%%:*}
  if [ $rc -ne 0 ]; then status=1; fi
  printf '%-26s rc=%-3s %s\n' "$name" "$rc" "$(grep -h 'cell(s) run' "$OUT/$name.log" | tail -1)"
done
echo "wall: $(( $(date +%s) - T0 )) s (budget $BUDGET s); rc 124/130/137 = stopped at the budget (finished cells are kept; rerun to resume)"
DIRS=()
for spec in "${RUNS[@]}"; do  # figures and summary tables from the records, in parallel
  name=${spec%%:*}
  DIRS+=("$OUT/$name")
  python3 -m analogsim.cli plot "$OUT/$name" >/dev/null 2>&1 &
done
wait
python3 -m analogsim.cli report "${DIRS[@]}" --out "$OUT/reproduction.md" --img "$OUT/img" \
  || status=1
python3 -m analogsim.cli report "${DIRS[@]}" --compact || status=1
echo "full report: $OUT/reproduction.md"
exit $status
