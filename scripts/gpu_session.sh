#!/usr/bin/env bash
# What one lent GPU session (the `device` tool, ~10 minutes) runs from the repository root:
#   1. the corner (pose) detector fine-tuned on the GPU: synthetic scenes rendered there in
#      parallel + the train split of the openalpr US photos (never the EU set);
#   2. benchmarks.throughput on the GPU: generator crops/s by back end and batch, 1080p end to end,
#      1 / 4 / 16 streams in one process, with their pipelines on threads and in 8 worker processes
#      (enhance-video --workers: the models stay in one process and serve them all).
# Packages the GPU image lacks travel as wheels in .whl/ (ultralytics, ultralytics-thop, av,
# filterpy); the US photos travel shrunk to 640 px (their labels rescaled) in .dev/us with the
# hold-out's label files only, so train.detector's fixed split is the usual one and no hold-out
# image is there at all. Everything lands in $OUT; results are committed from there.
# Knobs (for a dry run on a CPU): SKIP_AB, SKIP_DETECTOR, SKIP_THROUGHPUT, SKIP_STREAMS, STREAMS_WORKERS, STREAMS_EVERY, STREAMS_DET_BATCH, STREAMS_DET_PRECISION, DEVICE, N_SYN, HOURS, BATCH, WORKERS, GEN_WORKERS,
# IMGSZ, US_SHRUNK (real train-split plates shrunk into 1080p frames, K copies), US_LONG / US_LONG_SHRUNK (K copies
# squashed into long, EU-shaped plates, full size / shrunk; defaults 3 / 3 / 3 as in the default weights' last run,
# benchmarks/results/detection/long_plates.md: without them a run would unlearn the long plates), US_ZOOM (K close-ups of
# each train-split photo; a CPU trial: benchmarks/results/detection/zoom_trial.md), TP_ARGS,
# STYLES (synthetic plate styles, e.g. "latin latin_eu latin_eu ccpd_blue"; a CPU trial of that one made
# the EU photos worse: benchmarks/results/detection/eu_styles_trial.md).
set -u
OUT=${OUT:-/tmp/gpu_out}
LOGS=/tmp/gpu_logs  # text files, packed into $OUT/logs.tgz at every step (the tool returns 8 files at most)
mkdir -p "$OUT" "$LOGS"
DEVICE=${DEVICE:-0}
N_SYN=${N_SYN:-5000}
HOURS=${HOURS:-0.06}
BATCH=${BATCH:-64}
WORKERS=${WORKERS:-12}
GEN_WORKERS=${GEN_WORKERS:-13}
IMGSZ=${IMGSZ:-640}
US_SHRUNK=${US_SHRUNK:-3}
US_LONG=${US_LONG:-3}
US_LONG_SHRUNK=${US_LONG_SHRUNK:-3}
US_ZOOM=${US_ZOOM:-0}
TP_ARGS=${TP_ARGS:---device cuda --batches 1 32 256 1024 4096 --sizes 1920x1080 --seconds 6 --streams 1 4 16 --workers 0 8 --no-naive --sr-backend eager --sr-precision fp16}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$LOGS/timeline.txt"; tar czf "$OUT/logs.tgz" -C "$LOGS" .; }

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  # ultralytics imports polars only to read results.csv back, inside a try: a stub keeps the
  # 40 MB wheel off the transfer (the read then returns {}, as ultralytics intends on failure).
  mkdir -p /tmp/site/polars && echo '"""stub (see scripts/gpu_session.sh)"""' > /tmp/site/polars/__init__.py
  export PYTHONPATH=/tmp/site:$PWD
fi
# The Chinese plate glyphs: a subset of WenQuanYi Micro Hei (fontTools) travels in .dev when the
# image has no fonts-wqy-microhei.
for f in .dev/wqy-microhei-plates.ttf .devfont/wqy-microhei-plates.ttf; do [ -f "$f" ] && export LICENSE_ENHANCER_CJK_FONT=$PWD/$f; done
export YOLO_OFFLINE=1 YOLO_CONFIG_DIR=${YOLO_CONFIG_DIR:-/tmp/ycfg} PYTHONUNBUFFERED=1
mkdir -p "$YOLO_CONFIG_DIR/Ultralytics"
[ -f "$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf" ] || cp "$(python3 -c 'import matplotlib, os; print(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data/fonts/ttf/DejaVuSans.ttf"))')" "$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf"
(nvidia-smi || true) > "$LOGS/nvidia-smi.txt" 2>&1
# ultralytics' data-loader workers pass batches through shared memory: make room where allowed
mount -o remount,size=16G /dev/shm 2>/dev/null; df -h /dev/shm >> "$LOGS/nvidia-smi.txt" 2>&1; nproc >> "$LOGS/nvidia-smi.txt"
python3 -c "import torch, cv2, ultralytics; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0), 'cv2', cv2.__version__, 'ultralytics', ultralytics.__version__)" 2>&1 | tee "$LOGS/versions.txt"
stamp "set up"

# 0. the detector's batch / NMS A/B (about a minute; benchmarks/results/throughput_streams_gpu); SKIP_AB=1 to leave out
[ "${SKIP_AB:-0}" = 1 ] || PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" python3 scripts/detector_batch_nms_ab.py cuda > "$LOGS/detector_batch_nms_ab.txt" 2>&1
stamp "detector A/B done (exit $?)"

# 1. detector (GPU + most cores); SKIP_DETECTOR=1 for the benchmark alone
[ "${SKIP_DETECTOR:-0}" = 1 ] || python3 -m train.detector --synthetic "$N_SYN" --data-workers "$GEN_WORKERS" --us .dev/us --us-repeat 3 --us-shrunk "$US_SHRUNK" --us-zoom "$US_ZOOM" \
  --us-long "$US_LONG" --us-long-shrunk "$US_LONG_SHRUNK" \
  --init tracker/weights/plate_yolov8p_pose.safetensors --imgsz "$IMGSZ" --hours "$HOURS" --batch "$BATCH" ${STYLES:+--styles $STYLES} \
  --workers "$WORKERS" --device "$DEVICE" --out "$OUT/plate_yolov8p_pose_gpu.safetensors" --workdir /tmp/le-det \
  > "$LOGS/detector.log" 2>&1
stamp "detector done (exit $?)"
cp /tmp/le-det/runs/train/results.csv "$LOGS/detector_results.csv" 2>/dev/null

# 2. throughput with the GPU to itself
[ "${SKIP_THROUGHPUT:-0}" = 1 ] || python3 -m benchmarks.throughput --out "$OUT/throughput" $TP_ARGS > "$LOGS/throughput.log" 2>&1
stamp "throughput done (exit $?)"

# 3. 16 1080p streams without the annotated video (H100 / H200 have no NVENC: x264 encoding of 16
#    1080p outputs alone needs more than 16 cores), pipelines on threads vs worker processes, with
#    NVDEC decoding, the detector on every frame and on every 3rd; SKIP_STREAMS=1 to leave out
[ "${SKIP_STREAMS:-0}" = 1 ] || python3 -m benchmarks.throughput --out "$OUT/throughput_streams" --device cuda --batches \
  --sizes 1920x1080 --seconds 6 --no-naive --no-video-rows --no-encoder --streams 16 --workers ${STREAMS_WORKERS:-16 8 0} \
  --streams-detect-every ${STREAMS_EVERY:-1 3} --streams-detector-batch ${STREAMS_DET_BATCH:-4} --detector-precision ${STREAMS_DET_PRECISION:-auto} --streams-no-video --streams-hwaccel cuda --sr-backend eager --sr-precision fp16 > "$LOGS/streams.log" 2>&1
stamp "streams done (exit $?)"
