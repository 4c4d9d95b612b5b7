#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (finishes within 5 minutes):
#   1. the CUDA-capable tests (tests/engine/test_devices.py: the shipped style in fp16
#      against fp32, the bench's backends, the live pipeline with the flow blend),
#   2. `streamnst bench` on CUDA (fp32 and fp16) at 360p, 720p and 1080p,
#   3. the live pipeline at 1920x1080 and 1280x720 from a video file into the null sink
#      for 20 s each (CUDA, flow blend and keep-face on, working-size cap off, the whole
#      chain on the GPU), with fps, p95 latency, CPU per frame and GPU ms per step.
# Prints every figure; put them in docs/benchmarks.md.
#   bash tools/gpu_check.sh [OUT_DIR]
#   bash tools/gpu_check.sh --cpu [OUT_DIR]   every part, small and short, on the CPU: a dry
#                                            run that keeps this script working (CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda
if [[ "${1:-}" == "--cpu" ]]; then
  device=cpu
  shift
fi
out=${1:-$(mktemp -d)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if [[ $device == cuda ]]; then
  if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible to torch; nothing to check" \
      "(bash tools/gpu_check.sh --cpu runs the same steps on the CPU)" >&2
    exit 2
  fi
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
    torch.cuda.get_device_name(0))"
  bench_args=(-r 360p -r 720p -r 1080p --repeat 30 --warmup 5)
  seconds=20 frames=600
else
  bench_args=(--size 320x180 --network unet-w16 --repeat 3 --warmup 1)
  seconds=3 frames=30
fi

echo "== 1. device tests ($device)"
timeout 180 python3 -m pytest -q tests/engine/test_devices.py -p no:cacheprovider 2>&1 | tail -5

echo "== 2. streamnst bench on $device"
timeout 90 streamnst bench --device "$device" "${bench_args[@]}" --json > "$out/bench.json"
python3 - "$out/bench.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"{'network':<16}{'backend':<20}{'size':<9}{'median ms':>10}{'p95 ms':>9}{'fps':>8}")
for r in data["results"]:
    print(f"{r['network']:<16}{r['backend']:<20}{r['resolution']:<9}{r['median_ms']:>10.2f}"
          f"{r['p95_ms']:>9.2f}{r['fps']:>8.1f}")
EOF

echo "== 3. live from a file into the null sink, ${seconds} s, $device: flow blend and keep-face on"
echo "   (the chain on the device: engine/steps; gpu:STEP lines are CUDA-event milliseconds)"
for size in 1920x1080 1280x720; do
  clip="$out/clip$size.mp4"
  python3 - "$clip" "$frames" "$size" <<'EOF2'
import sys
import cv2
from streamnst.media.demo import demo_clip
from streamnst.media.video import VideoReader, VideoWriter
w, h = (int(v) for v in sys.argv[3].split("x"))
with VideoReader(demo_clip()) as reader:
    writer = VideoWriter(sys.argv[1], reader.fps)
    for i, image in enumerate(reader):
        if i >= int(sys.argv[2]):
            break
        writer.write(cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC))
    writer.close()
EOF2
  timeout 120 streamnst live --source "$clip" --output null --device "$device" --scale 1 \
    --max-side 0 --keep-face 0.6 --duration "$seconds" --json > "$out/live$size.json"
  python3 - "$out/live$size.json" "$size" <<'EOF2'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}: fps {s['fps']:.1f}  latency p50 {s['latency_p50_ms']:.0f} ms  p95 "
      f"{s['latency_p95_ms']:.0f} ms  cpu/frame {s['cpu_ms_per_frame']:.1f} ms  dropped "
      f"{s['dropped']}  device {s['device']}  dtype {s['dtype']}")
for stage, v in s["stages_ms"].items():
    print(f"  {stage:<16} median {v['median_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms")
EOF2
done
echo "gpu_check: done; raw figures in $out"
