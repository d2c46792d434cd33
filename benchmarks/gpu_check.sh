#!/usr/bin/env bash
# Every GPU measurement issues 6 and 18 ask for, as one script for a session that is lent a GPU.
#
# On the device machine (Python 3.12, torch, torchmetrics, safetensors, matplotlib; no network),
# from the repository root, with the MNIST cache carried in an ignored folder:
#
#   here:   mkdir -p .gpu-cache && cp ~/.cache/gankit/mnist-v1.npz .gpu-cache/   (53 MB; .gpu-cache/ is in .gitignore)
#   there:  GANKIT_CACHE=$PWD/.gpu-cache bash benchmarks/gpu_check.sh   (device tool: carry [".gpu-cache"])
#
# Writes everything under $OUT (or ./gpu-results): bench JSON, the CUDA tests' log, time to
# quality, the dcgan scaling table, the 256 px presets' first steps. Budget: about 9 minutes on one H100.
set -u
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

# 1. The captured step equals eager on CUDA (and the rest of the engine tests).
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/training/test_engine.py 2>&1 | tail -15 | tee "$OUT/cuda_tests.txt"

# 2. gankit against the tutorial's loop, same process (issue 6 targets).
for args in "--preset seed-mlp --batch 128" "--preset seed-mlp --batch 1024" "--preset dcgan --batch 64" \
            "--preset dcgan --batch 64 --precision bf16" "--preset dcgan --batch 64 --set train.channels_last=true"; do
  name=$(echo "$args" | tr -c 'a-z0-9\n' '_')
  timeout 90 $PY -m gankit bench $args --device cuda --seconds 10 --json > "$OUT/bench_$name.json" 2>> "$OUT/bench.err"
  cat "$OUT/bench_$name.json"
done

# 3. Time to quality on the GPU (FID on 5,000 samples every 250 steps).
timeout 150 $PY benchmarks/time_to_quality.py --preset dcgan --target 50 --max-steps 3000 --eval-every 250 \
  --eval-n 5000 --device cuda --json "$OUT/ttq_dcgan.json" 2>&1 | tail -12
timeout 150 $PY benchmarks/time_to_quality.py --preset seed-mlp --target 100 --max-steps 20000 --eval-every 1000 \
  --eval-n 5000 --device cuda --chunk-evals 5 --json "$OUT/ttq_seed_mlp.json" 2>&1 | tail -12

# 4. dcgan scaling: batch 64..4096 x resolution 28/32/64.
timeout 150 $PY benchmarks/dcgan_scaling.py --device cuda --res 28,32,64 --data fake --seconds 2 \
  --json "$OUT/scaling.json" | tee "$OUT/scaling.md"

# 5. Profiles (issue 18): where a dcgan step's time goes on the GPU, and a translation run's.
timeout 120 $PY -m gankit bench --preset dcgan --batch 64 --device cuda --seconds 4 --profile 20 \
  --profile-dir "$OUT/profile-dcgan" --json > "$OUT/bench_profile_dcgan.json" 2>> "$OUT/bench.err"
cp "$OUT"/profile-dcgan/profile/top_ops.txt "$OUT/top_ops_dcgan.txt" 2>/dev/null
timeout 150 $PY -m gankit train --preset pix2pix --steps 60 --profile 20 --device cuda --no-progress \
  --out "$OUT/pix2pix-profile" 2>&1 | tail -30 > "$OUT/pix2pix_profile.txt" || true

# 6. The 256 px GPU presets (issue 28), at the papers' widths, on built-in data: 20 steps each
#    (at most 60 s) to show they build, fit and step; train.log has the steps/s. The full runs'
#    commands are in docs/presets.md ("On a GPU"). r3gan-ffhq256 at batch 64 here (its 256 with
#    R1 + R2 every step is the long one); stylegan2-256 at its own 64.
for preset in stylegan2-256 r3gan-ffhq256; do
  extra=""; [ "$preset" = r3gan-ffhq256 ] && extra="--batch 64"
  timeout 150 $PY -m gankit train --preset $preset --data fake:3x256x256:512 --steps 20 --max-seconds 60 $extra \
    --set data.mirror=false --device cuda --no-progress --out "$OUT/$preset" 2>&1 | tail -8 > "$OUT/$preset.txt" || true
  cat "$OUT/$preset.txt"
done
