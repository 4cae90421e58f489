#!/usr/bin/env bash
# What one lent GPU session (the `device` tool) runs from the repository root to train the plate
# generators (#6): two sizes side by side on the one GPU, each L1 pretraining then GAN fine-tuning
# (train.generator, the same code as on a CPU, with --device cuda and data-loader workers: the
# degradation, not the network, is the cost).
#   tiny   espcn_res 32 ch x 4 blocks: the CPU default (>= 200 crops/s int8 on 2 cores)
#   medium espcn_res 48 ch x 8 blocks: about 4x the compute, for GPUs and a quality mode
# Data travels packed (scripts/pack_sr_data.py: openalpr/us only, never the EU evaluation set) in
# .dev/sr_data, PyAV as a wheel in .whl, the CJK plate font subset in .dev. The GAN phases keep a
# snapshot every EVAL_S seconds; the machine has no rapidocr, so the OCR picks among them later:
#   python -m train.generator --select RUN_DIR --out WEIGHTS
# Knobs (a dry run on a CPU: DEVICE=cpu L1_MIN=0.3 GAN_MIN=0.3 WORKERS=1): DEVICE, L1_MIN, GAN_MIN, WORKERS, EVAL_S,
# P_VIDEO (share of pairs degraded like crops of H.264 footage, train.video_degradation; default 0:
# the L1 CPU trial with 0.5 read worse on footage, benchmarks/results/generator_footage_trial).
set -u
OUT=${OUT:-/tmp/gpu_out}
RUNS=/tmp/gen_runs
LOGS=$RUNS/logs
mkdir -p "$OUT" "$LOGS"
DEVICE=${DEVICE:-cuda}
L1_MIN=${L1_MIN:-4.2}
GAN_MIN=${GAN_MIN:-2.3}
WORKERS=${WORKERS:-7}
EVAL_S=${EVAL_S:-20}
P_VIDEO=${P_VIDEO:-0}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$LOGS/timeline.txt"; }

if ls .whl/av-*.whl >/dev/null 2>&1 && ! python3 -c "import av" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/av-*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
[ -f .dev/wqy-microhei-plates.ttf ] && export LICENSE_ENHANCER_CJK_FONT=$PWD/.dev/wqy-microhei-plates.ttf
export PYTHONUNBUFFERED=1
(nvidia-smi || true) > "$LOGS/nvidia-smi.txt" 2>&1; nproc >> "$LOGS/nvidia-smi.txt"
python3 -c "import torch, cv2, av; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0), 'cv2', cv2.__version__, 'av', av.__version__)" 2>&1 | tee "$LOGS/versions.txt"
stamp "set up"

COMMON="--steps 10000000 --workers $WORKERS --synthetic 600 --synthetic-refresh 0.25 --data .dev/sr_data
  --eval-every 10000000 --eval-every-s $EVAL_S --ckpt-every 10000000 --no-ocr --device $DEVICE --threads 1 --split-seed 0
  --p-video $P_VIDEO"

chain() {  # name, then the architecture flags
  local name=$1; shift
  python3 -m train.generator --phase l1 --run-dir "$RUNS/${name}_l1" --out "$RUNS/${name}_l1/best.safetensors" \
    --arch espcn_res --scale 4 "$@" --minutes "$L1_MIN" --batch 64 --hr-width 96 --lr 5e-4 --seed 0 $COMMON \
    > "$LOGS/${name}_l1.log" 2>&1
  stamp "$name l1 done (exit $?)"
  python3 -m train.generator --phase gan --run-dir "$RUNS/${name}_gan" --out "$RUNS/${name}_gan/best.safetensors" \
    --init "$RUNS/${name}_l1/last.safetensors" --recognizer sr_model/weights/plate_crnn.safetensors \
    --minutes "$GAN_MIN" --batch 32 --hr-width 144 --lr 1e-4 --lr-d 1e-4 --w-l1 1.0 --w-feat 0.1 --w-ctc 0.1 \
    --w-adv 0.005 --d-channels 16 --seed 1 --snapshots true $COMMON > "$LOGS/${name}_gan.log" 2>&1
  stamp "$name gan done (exit $?)"
}
chain tiny --channels 32 --n-blocks 4 &
chain medium --channels 48 --n-blocks 8 &
wait

# generator speed of both sizes on this device (eager, channels-last, half precision on a GPU)
python3 - > "$LOGS/speed.txt" 2>&1 <<'EOF'
import time, torch
from sr_model.generator import GeneratorConfig, build_generator
dev = "cuda" if torch.cuda.is_available() else "cpu"
dt = torch.float16 if dev == "cuda" else torch.float32
for c, b in ((32, 4), (48, 8)):
    m = build_generator(GeneratorConfig(arch="espcn_res", scale=4, channels=c, n_blocks=b)).eval().to(dev, dt)
    m = m.to(memory_format=torch.channels_last)
    for n in ((1024, 4096) if dev == "cuda" else (32,)):
        x = torch.rand(n, 3, 32, 96, device=dev, dtype=dt).to(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(3):
                m(x)
            if dev == "cuda":
                torch.cuda.synchronize()
            t, k = time.perf_counter(), 0
            while time.perf_counter() - t < 3:
                m(x); k += 1
            if dev == "cuda":
                torch.cuda.synchronize()
        print(f"espcn_res {c}x{b} {dev} {dt} batch {n}: {k * n / (time.perf_counter() - t):.0f} crops/s")
EOF
stamp "speed done"
for name in tiny medium; do
  # 16 MB a file comes back: the L1 run's last weights (the GAN's init), the GAN's snapshots (its
  # last.safetensors is the final snapshot, its best.safetensors the PSNR pick), logs and configs
  tar czf "$OUT/$name.tgz" -C "$RUNS" --exclude checkpoint.pt --exclude best.safetensors \
    --exclude "${name}_gan/last.safetensors" "${name}_l1" "${name}_gan"
done
tar czf "$OUT/logs.tgz" -C "$RUNS" logs
stamp "packed"
cat "$LOGS/timeline.txt" "$LOGS/speed.txt"
