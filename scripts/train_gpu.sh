#!/usr/bin/env bash
# Train the teacher (two recipes side by side on one GPU), keep the better one on the validation
# split, compress it into the student, evaluate all on the test split: the whole model pipeline in
# one CUDA session sized to a time budget. RUNS (default runs/gpu) must be new or empty. The teacher
# is packed into ASSETS before compression (compress records that path); if compression then
# fails, ASSETS holds a new teacher beside the old student (git checkout restores it).
# Writes under OUT: teacher.safetensors, student.safetensors
# (fp16, as shipped; also written to mobile_sdk/assets/) and logs.tar.gz (train logs, evals, the compress report). The step counts it
# chose are printed, as the exact `mobile-sdk` commands that reproduce each stage.
#
#   scripts/train_gpu.sh OUT [TEACHER_SECONDS] [COMPRESS_SECONDS]
set -euo pipefail
OUT=${1:?usage: scripts/train_gpu.sh OUT [TEACHER_SECONDS] [COMPRESS_SECONDS]}
T_BUDGET=${2:-250}
C_BUDGET=${3:-140}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."  # the repository root: scripts/, mobile_sdk/ and the default RUNS / ASSETS
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PYTHON:-python3}  # the interpreter that has the project's dependencies
MS="$PY -m mobile_sdk.cli"
RUNS=${RUNS:-runs/gpu}
ASSETS=${ASSETS:-mobile_sdk/assets}  # where the shipped checkpoints go (as on the CPU route)
if [ -d "$RUNS" ] && [ -n "$(ls -A "$RUNS")" ]; then
    # compress would resume stages distilled from an earlier teacher, train would append to old logs
    echo "train_gpu.sh: $RUNS is not empty; move it away or set RUNS to a new folder" >&2
    exit 2
fi
mkdir -p "$RUNS"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # a failed run takes its sibling down with it
NCPU=$(nproc)
W=$(( NCPU > 4 ? (NCPU - 2) / 2 : 1 ))
BS=${BS:-256}
MODEL=${MODEL:-teacher}
STUDENT=${STUDENT:-student}
MIN_STEPS=${MIN_STEPS:-100}  # smaller only for a smoke run
step() { echo "[$(date +%T)] $*"; }
show() { echo "+ mobile-sdk $*" | tr -s ' \n' ' '; echo; }  # the exact command, on one line
pack_logs() { tar czf "$OUT/logs.tar.gz" "$RUNS"/*.log "$RUNS"/*.json "$RUNS"/teacher_*/train_log.jsonl "$@"; }
round100() { $PY -c "import sys; n, lo = float(sys.argv[1]), int(sys.argv[2]); print(max(lo, int(n / 100) * 100))" "$1" "$2"; }

$PY -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
step "loader throughput ($W workers per run)"
RATE=$($PY scripts/loader_rate.py --workers "$W" --batch-size $BS --seconds 12 --pairs 0.3)
T_STEPS=$(round100 "$($PY -c "print($RATE * $T_BUDGET / $BS)")" $MIN_STEPS)
step "rate $RATE samples/s per run -> teacher steps $T_STEPS"

COMMON="--model $MODEL --steps $T_STEPS --batch-size $BS --lr 1e-3 --seed 0 --workers $W --eval-every $T_STEPS
 --save-every $T_STEPS --hard-negatives 3 --positives truth --device $DEVICE --no-progress"
show train $COMMON --out "$RUNS/teacher_a"
show train $COMMON --pairs 0.3 --out "$RUNS/teacher_b"
$MS train $COMMON --out "$RUNS/teacher_a" > "$RUNS/teacher_a.log" 2>&1 &
A=$!
$MS train $COMMON --pairs 0.3 --out "$RUNS/teacher_b" > "$RUNS/teacher_b.log" 2>&1 &
B=$!
wait $A || { tail -30 "$RUNS/teacher_a.log"; exit 1; }
wait $B || { tail -30 "$RUNS/teacher_b.log"; exit 1; }
step "teachers done"
BEST=$($PY - "$RUNS" <<'PY'
import json, sys
from pathlib import Path
best = None
for v in ("a", "b"):
    rec = [json.loads(l) for l in open(Path(sys.argv[1]) / f"teacher_{v}" / "train_log.jsonl")]
    val = [r["val"] for r in rec if "val" in r][-1]
    print(f"teacher_{v}: val {json.dumps(val)}", file=sys.stderr)
    if best is None or val["zeroshot_mean"] > best[1]:
        best = (v, val["zeroshot_mean"])
print(best[0])
PY
)
step "best on validation: teacher_$BEST"
$MS pack "$RUNS/teacher_$BEST/model.safetensors" "$ASSETS/teacher.safetensors"
cp "$ASSETS/teacher.safetensors" "$OUT/"
$MS eval --checkpoint "$ASSETS/teacher.safetensors" --device $DEVICE --json "$RUNS/teacher_eval.json"
pack_logs

CW=$(( NCPU > 2 ? NCPU - 2 : 1 ))
CRATE=$($PY -c "print($RATE * $CW / $W)")
D_STEPS=$(round100 "$($PY -c "print(0.8 * $CRATE * $C_BUDGET / $BS)")" $MIN_STEPS)
F_STEPS=$(round100 "$($PY -c "print(0.1 * $CRATE * $C_BUDGET / $BS)")" $MIN_STEPS)
CARGS="--teacher $ASSETS/teacher.safetensors --student $STUDENT --out $RUNS/compress --distill-steps $D_STEPS --finetune-steps $F_STEPS
 --batch-size $BS --lr 1e-3 --seed 0 --workers $CW --device $DEVICE --no-progress"
show compress $CARGS
$MS compress $CARGS > "$RUNS/compress.log" 2>&1 || { tail -30 "$RUNS/compress.log"; exit 1; }
tail -12 "$RUNS/compress.log"
$MS pack "$RUNS/compress/student.safetensors" "$ASSETS/student.safetensors"
cp "$ASSETS/student.safetensors" "$OUT/"
$MS eval --checkpoint "$ASSETS/student.safetensors" --device $DEVICE --json "$RUNS/student_eval.json"
pack_logs $(cd "$RUNS" && find compress -maxdepth 2 \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' \) | sed "s|^|$RUNS/|")
step "done"
