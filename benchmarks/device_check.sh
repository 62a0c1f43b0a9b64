#!/usr/bin/env bash
# The GPU path checked in one go (< 8 min on one GPU): prints
#   1. PGD-k adversarial training step vs (k+1) clean steps, LeNet-5 (PGD-40) and ResNet-20 (PGD-10),
#      XLA off/on x mixed precision off/on                          (benchmarks/bench_scale.py, "step" rows)
#   2. the attack benchmark's PGD rows (LeNet-5, PGD-40 at eps 0.1/0.3)  (benchmarks/bench_attacks.py)
#      and APGD rows (APGD-CE/-T at eps 0.1/0.3)                         (benchmarks/bench_autoattack.py)
#   3. a short ResNet-20 PGD-10 training run's throughput, images/s      (bench_scale.py, "throughput" row)
#
# Usage: benchmarks/device_check.sh [--cpu]
#   --cpu  quick mode for a machine without GPU (about 1-2 minutes on 2 cores): LeNet-5 only, XLA off,
#          1 repeat, 100 test images, a 3-step throughput run. Same scripts, same code path.
# Data: MNIST from $MNIST (default: ../shared/data/mnist.npz, the shared folder beside the repository).
# Python: $PYTHON, else the repository's .venv (made with `make install` first if it is missing).
# Output: JSON lines and the benchmarks' tables on stdout; their full records under $OUT_DIR (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ]; then
  echo "== no .venv yet: make install" >&2
  make install >&2
fi
PY=${PYTHON:-.venv/bin/python}
MNIST=${MNIST:-../shared/data/mnist.npz}
if [ ! -f "$MNIST" ]; then
  echo "error: MNIST not found at $MNIST; set MNIST=path/to/mnist.npz" >&2; exit 2
fi
OUT_DIR=${OUT_DIR:-$(mktemp -d)}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [ "${1:-}" = "--cpu" ]; then
  SCALE=(--models=lenet5 --xla=off --mixed=off,on --repeats=1 --throughput_steps=3)
  ATTACK=(--models=lenet5 --epochs=0.05 --num_examples=100 --repeats=1)
  APGD=(--epochs=0.05 --num_examples=100 --eps=0.3)
elif [ -n "${1:-}" ]; then
  echo "error: unknown option $1; use --cpu or nothing" >&2; exit 2
else
  SCALE=(--models=lenet5,resnet20 --xla=off,on --mixed=off,on --repeats=5 --throughput_steps=50)
  ATTACK=(--models=lenet5 --epochs=1 --num_examples=1000 --repeats=3)
  APGD=(--epochs=1 --num_examples=1000 --eps=0.1,0.3)
fi

echo "== 1+3. PGD-k step vs (k+1) clean steps; ResNet-20 PGD training throughput"
"$PY" benchmarks/bench_scale.py "${SCALE[@]}"
echo "== 2a. attack benchmark: PGD rows"
"$PY" benchmarks/bench_attacks.py --data="$MNIST" "${ATTACK[@]}" --attacks=pgd --skip_art --skip_foolbox \
  --output="$OUT_DIR/attacks.json"
echo "== 2b. attack benchmark: APGD rows"
"$PY" benchmarks/bench_autoattack.py --data="$MNIST" "${APGD[@]}" --attacks=apgd --skip_art \
  --output="$OUT_DIR/apgd.json"
echo "records: $OUT_DIR"
