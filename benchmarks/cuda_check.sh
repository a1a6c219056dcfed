#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (a few minutes on one GPU), from the repository root:
#   bash benchmarks/cuda_check.sh OUT_DIR
# 1. tests/test_cuda.py: CUDA is the default, GPU restoration equals the CPU's, a GPU run resumes and
#    loads on a CPU-only machine;
# 2. training throughput on the GPU: 300 steps of each shipped sharpening recipe, batches drawn in the
#    training process (--workers 0) and by $WORKERS worker processes; steps/s from the logs, and the time
#    one core takes to draw a batch;
# 3. `isp-collab bench speed` with the `cuda` / `cuda-cl` runtimes, into OUT_DIR/speed (its own RESULTS.md);
#    skipped with SPEED=0 (and 2. with TRAIN=0).
# Exit status: that of the CUDA tests.
# Runs from a source tree without installing (PYTHONPATH=.), with the machine's own torch.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/cuda_check.sh OUT_DIR}
THREADS=${THREADS:-$(nproc)}
WORKERS=${WORKERS:-8}
mkdir -p "$OUT"
rm -rf /tmp/cuda-check  # no run of an earlier, cut-short check is resumed or read
mkdir -p /tmp/cuda-check  # train creates only the last folder of --out / --run-dir
export PYTHONPATH=. PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 2

echo "== 1. CUDA tests"
python3 -m pytest tests/test_cuda.py -s -rs -p no:cacheprovider 2>&1 | tee "$OUT/pytest.txt"
rc=$?

if [ "${TRAIN:-1}" != 0 ]; then

echo "== 2. training throughput on the GPU"
for n in 1 4; do
  for w in 0 "$WORKERS"; do
    timeout 150 python3 -m isp_collab train "train/sharpen-unet-tx-n$n.toml" --steps 300 --device cuda \
      --workers "$w" --images benchmarks/data/val --val-images benchmarks/data/val \
      --run-dir "/tmp/cuda-check/run-n$n-w$w" --out "/tmp/cuda-check/model-n$n-w$w" --overwrite --no-progress
  done
done
python3 - "$OUT/train_throughput.txt" "$WORKERS" <<'EOF'
import json, sys, time
from pathlib import Path

import torch

from isp_collab.training import load_recipe
from isp_collab.training.tasks import build_task

lines = []
for n in (1, 4):
    recipe = load_recipe(f"train/sharpen-unet-tx-n{n}.toml")
    for w in (0, int(sys.argv[2])):
        log = Path(f"/tmp/cuda-check/run-n{n}-w{w}/log.jsonl")
        if not log.exists():
            lines.append(f"N={n}, {w} workers: no run log (training failed)")
            continue
        recs = {r["step"]: r for r in map(json.loads, log.read_text().splitlines()) if "loss" in r}
        if 100 not in recs or 300 not in recs:
            lines.append(f"N={n}, {w} workers: the run stopped before step 300")
            continue
        rate = 200 / (recs[300]["elapsed"] - recs[100]["elapsed"])
        lines.append(
            f"N={n}, {w} workers: {rate:.1f} steps/s on {torch.cuda.get_device_name(0)} (steps 100-300, "
            f"{recipe.train.patches_per_step} patches of {recipe.data.patch} px per step)"
        )
    recipe.data.images = ["benchmarks/data/val"]
    torch.set_num_threads(1)
    task = build_task(recipe)
    gen = torch.Generator().manual_seed(0)
    task.sample(recipe.stacks_per_step, gen)
    t = time.perf_counter()
    for _ in range(50):
        task.sample(recipe.stacks_per_step, gen)
    lines.append(f"N={n}: one CPU core draws a batch in {1000 * (time.perf_counter() - t) / 50:.1f} ms")
Path(sys.argv[1]).write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
fi

[ "${SPEED:-1}" = 0 ] && exit $rc
echo "== 3. speed bench with the CUDA runtimes ($THREADS CPU threads)"
timeout 330 python3 -m isp_collab bench speed --out "$OUT/speed" --threads "$THREADS" 2>&1 | tail -40
ls -la "$OUT" "$OUT/speed"
exit $rc
