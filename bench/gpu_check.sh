#!/usr/bin/env bash
# One short GPU lease's checks, most telling first, each capped so the whole fits the lease:
#   1. the README's main command with the device left to `auto` (the demo GAN, autoencoder and
#      benchmark: CUDA, bf16 autocast, cuDNN), timed;
#   2. training throughput per network at 64 and 224 px (bench/throughput.py), and the latent CNN
#      against the pixel CNN per epoch (bench/latent_vs_pixel.py), both on the GPU; whether the same
#      small benchmark, run twice, gives the same test probabilities bit for bit;
#   3. with the real data at $DATA: the paper profile's DenseNet-121 on real images at 224 px,
#      stopped with SIGINT (the run stays resumable) when the budget runs out.
# Run in the repository root of a CUDA machine, where torch, torchvision, torchmetrics,
# scikit-image, tqdm, typer and PyYAML are installed already (nothing is downloaded):
#     OUT=dir DATA=path/to/chest_xray_224 bash bench/gpu_check.sh [SECONDS]
# It writes $OUT/gpu_check.log and, per run, $OUT/<name>.tar.gz of `genaug archive` (no weights).
# DEVICE=cpu QUICK=1 runs the same steps on tiny settings, to check the script itself anywhere
# (tests/test_bench_scripts.py does). STEPS=3 runs step 3 alone (default 123). MODELS=resnet34 (or a
# list) trains those models in step 3 instead of DenseNet-121, as a run named gpu-paper-<models>-real,
# with SEEDS seeds (default the paper profile's 3).
# RESUME=an archived benchmark run (e.g. docs/runs/benchmark/20261204-152919-gpu-paper-real, sent in the
# carried folder) makes step 3 add seeds to that run instead: `--resume` on a copy with --seeds $SEEDS
# (default 6); its finished cells are kept, so the lease trains only the new seeds.
#
# Sending it with the device tool: the tool sends tracked files and carried ones, at most 64 MiB. Tracked
# files are about 48 MiB (docs/runs 46 MiB, since session 52 writes run JSON without one number a line), so
# a call without the real data (checks 1-2) sends the tree as it is. The data is another 36 MiB: for a call
# with it, bench/gpu_send.sh takes the archived runs out of the index and copies the data (and any runs
# named) into the ignored folder .gpudata, then puts everything back:
#     bash bench/gpu_send.sh prepare [docs/runs/benchmark/20261204-152919-gpu-paper-real]
#     run(carry=[".gpudata"], command='mkdir -p ../shared/data && ln -sfn "$PWD/.gpudata/chest_xray_224"
#         ../shared/data/chest_xray_224 && OUT=$OUT DATA=../shared/data/chest_xray_224 bash bench/gpu_check.sh 500')
#     bash bench/gpu_send.sh restore
# (the data under ../shared/data keeps the path the cpu runs recorded, so `genaug compare` pairs them).
# To add seeds to session 51's 224 px run instead of starting one, name it to prepare as above and prefix
# the command with STEPS=3 RESUME=.gpudata/20261204-152919-gpu-paper-real (SEEDS=6 by default). Its three
# cells are kept; they took 5m46s together on an H200 (docs/PERFORMANCE.md (l)), so seeds 3-5 should fit
# a 500 s budget (an estimate; the script stops with SIGINT and the run stays resumable).
set -u
OUT=${OUT:-outputs/gpu_check}
DATA=${DATA:-}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
STEPS=${STEPS:-123}
RESUME=${RESUME:-}
SEEDS=${SEEDS:-}   # step 3: a new run's seeds (default 3), or those a RESUME run grows to (default 6)
MODELS=${MODELS:-}
if [ -n "$MODELS" ]; then PAPER_NAME="gpu-paper-${MODELS//,/-}-real"; else PAPER_NAME=gpu-paper-real; fi
PY=${PYTHON:-python3}   # the interpreter that has torch
BUDGET=${1:-520}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - $(elapsed) )); }
step() { echo; echo "== +$(elapsed)s $*"; }
# archive a run's results (no weights, latents or image files) as one file under $OUT
keep() { local run=$1 name=$2; [ -d "$run" ] || return 0
         "${G[@]}" archive "$run" --to "$W/archive-$name" >/dev/null && tar -czf "$OUT/$name.tar.gz" -C "$W/archive-$name" . ; }

step "machine"
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import torch, torchvision, torchmetrics; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
'torchmetrics', torchmetrics.__version__, 'cuda', torch.cuda.is_available(), torch.version.cuda,
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
nproc

step "install genaug without dependencies (they are the machine's own)"
if ! command -v genaug >/dev/null; then
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . || { echo "install failed"; exit 1; }
fi
if command -v genaug >/dev/null; then G=(genaug); else G=("$PY" -m genaug_cli); fi   # timeout needs a program
"${G[@]}" --help >/dev/null && echo "${G[*]} --help: ok"

if [ "$QUICK" = 1 ]; then
  demo=(--profile demo --device "$DEVICE" --models cnn --variants real --seeds 1 --epochs 1)
  tput=(--sizes 32 --batch-size 8 --steps 1 --models cnn)
  lvp=(--n 32 --batch-size 8 --pixel-sizes 32 --views 1)
  lvp_big=(--n 32 --batch-size 16 --pixel-sizes 32 --views 1)
  paper=(--models "${MODELS:-cnn}" --epochs 1 --seeds 1 --image-size 32)
  rep=(--profile demo --models cnn --variants real --seeds 1 --epochs 1)
else
  demo=(--profile demo)                   # the README's command: the device is left to `auto`
  tput=(--sizes 64,224 --batch-size 64 --steps 10 --models cnn,resnet34,densenet121)
  lvp=(--n 2048 --batch-size 64 --amp)
  lvp_big=(--n 4096 --batch-size 256 --amp)   # the benchmark's batch is 64; is the latent CNN launch-bound there?
  paper=(--models "${MODELS:-densenet121}" --seeds "${SEEDS:-3}")
  rep=(--profile demo --models cnn,resnet34,densenet121 --variants real --seeds 1)
fi

if [[ $STEPS == *1* ]]; then
  step "1. genaug benchmark ${demo[*]}"
  t0=$(date +%s)
  timeout -s INT $(( $(left) * 2 / 5 )) "${G[@]}" benchmark "${demo[@]}" --out "$W/runs" --name gpu-demo
  echo "exit $?; $(( $(date +%s) - t0 )) s wall"
  run=$(ls -d "$W"/runs/benchmark/*-gpu-demo 2>/dev/null | head -1)
  [ -n "$run" ] && grep -h '"device"\|"gpu"' "$run"/manifest.json 2>/dev/null
  keep "$run" gpu-demo
fi

if [[ $STEPS == *2* ]]; then
  step "2a. bench/throughput.py ${tput[*]}"
  timeout 120 "$PY" bench/throughput.py --device "$DEVICE" "${tput[@]}"; echo "exit $?"

  step "2b. bench/latent_vs_pixel.py ${lvp[*]}"
  timeout 90 "$PY" bench/latent_vs_pixel.py --device "$DEVICE" "${lvp[@]}"; echo "exit $?"

  step "2b'. bench/latent_vs_pixel.py ${lvp_big[*]}"
  timeout 90 "$PY" bench/latent_vs_pixel.py --device "$DEVICE" "${lvp_big[@]}"; echo "exit $?"

  # run.deterministic is on by default; genaug.device says what it cannot promise on a GPU
  step "2c. genaug benchmark ${rep[*]}, twice: do the cells repeat bit for bit?"
  for k in a b; do
    timeout 150 "${G[@]}" benchmark "${rep[@]}" --device "$DEVICE" --out "$W/repeat" --name "repeat-$k" >/dev/null 2>&1
    echo "exit $?"
  done
  "$PY" - "$W"/repeat/benchmark/*-repeat-a "$W"/repeat/benchmark/*-repeat-b <<'PY' || echo "could not compare the two runs"
import json, sys
from pathlib import Path
a, b = map(Path, sys.argv[1:3])
for cell in sorted((a / "cells").glob("*.json")):
    x, y = (json.loads((run / "cells" / cell.name).read_text()) for run in (a, b))
    diff = max(abs(p - q) for u, v in zip(x["test_probs"], y["test_probs"]) for p, q in zip(u, v))
    same = "identical" if x["test_probs"] == y["test_probs"] else f"differ: max |difference| of a test probability {diff:.3g}"
    print(f"{cell.stem}: test probabilities {same}; accuracy {x['test_at_val_threshold']['accuracy']:.4f} and "
          f"{y['test_at_val_threshold']['accuracy']:.4f}")
PY
fi

if [[ $STEPS != *3* ]]; then
  :
elif [ -n "$RESUME" ]; then
  name=$(basename "$RESUME")
  step "3. genaug benchmark --resume $name --seeds ${SEEDS:-6} ($(left) s left)"
  [ -f "$RESUME/manifest.json" ] || { echo "RESUME=$RESUME is not a run (no manifest.json)"; exit 1; }
  run="$W/runs/benchmark/$name"
  mkdir -p "$W/runs/benchmark" && cp -r "$RESUME" "$run"   # the archive itself stays as it was
  t0=$(date +%s)
  timeout -s INT $(( $(left) - 30 )) "${G[@]}" benchmark --resume "$run" --seeds "${SEEDS:-6}" --device "$DEVICE"
  echo "exit $?; $(( $(date +%s) - t0 )) s wall"
  keep "$run" "resumed-$name"
elif [ -n "$DATA" ] && [ -d "$DATA" ]; then
  step "3. genaug benchmark --profile paper --variants real ${paper[*]} on $DATA ($(left) s left)"
  t0=$(date +%s)
  timeout -s INT $(( $(left) - 30 )) "${G[@]}" benchmark --profile paper --data "$DATA" --variants real "${paper[@]}" \
      --device "$DEVICE" --out "$W/runs" --name "$PAPER_NAME"
  echo "exit $?; $(( $(date +%s) - t0 )) s wall"
  run=$(ls -d "$W"/runs/benchmark/*-"$PAPER_NAME" 2>/dev/null | head -1)
  keep "$run" "$PAPER_NAME"
else
  step "3. skipped: no real data (DATA=${DATA:-unset})"
fi
step "done"
ls -la "$OUT"
