#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (finishes within 5 minutes):
#   1. the test suite's CUDA-capable tests (stylizer on CUDA, fp16 close to fp32),
#   2. `streamnst bench` on CUDA (fp32 and fp16) at 360p, 720p and 1080p,
#   3. the live pipeline at 1280x720 from a video file into the null sink for 20 s
#      (CUDA fp16, flow blend, working-size cap off), with its per-stage budget.
# Prints every figure; put them in docs/benchmarks.md.
#   bash tools/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device visible to torch; nothing to check" >&2
  exit 2
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
  torch.cuda.get_device_name(0))"

echo "== 1. CUDA-capable tests"
timeout 120 python3 -m pytest -q tests/test_stylizer.py tests/test_models.py \
  tests/test_bench.py -p no:cacheprovider 2>&1 | tail -5

echo "== 2. streamnst bench on CUDA"
timeout 90 streamnst bench --device cuda -r 360p -r 720p -r 1080p --repeat 30 --warmup 5 \
  --json > "$out/bench_cuda.json"
python3 - "$out/bench_cuda.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"{'network':<16}{'backend':<12}{'size':<7}{'median ms':>10}{'p95 ms':>9}{'fps':>8}")
for r in data["results"]:
    print(f"{r['network']:<16}{r['backend']:<12}{r['resolution']:<7}{r['median_ms']:>10.2f}"
          f"{r['p95_ms']:>9.2f}{r['fps']:>8.1f}")
EOF

echo "== 3. live, 1280x720 file -> null sink, 20 s, CUDA"
clip="$out/clip720.mp4"
python3 - "$clip" <<'EOF'
import sys
import cv2
from streamnst.demo import demo_clip
from streamnst.video import VideoReader, VideoWriter
with VideoReader(demo_clip()) as reader:
    writer = VideoWriter(sys.argv[1], reader.fps)
    for i, image in enumerate(reader):
        if i >= 300:
            break
        writer.write(cv2.resize(image, (1280, 720), interpolation=cv2.INTER_CUBIC))
    writer.close()
EOF
timeout 120 streamnst live --source "$clip" --output null --device cuda --scale 1 \
  --max-side 0 --duration 20 --json > "$out/live_cuda.json"
python3 - "$out/live_cuda.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"fps {s['fps']:.1f}  latency p50 {s['latency_p50_ms']:.0f} ms  p95 "
      f"{s['latency_p95_ms']:.0f} ms  dropped {s['dropped']}  dtype {s['dtype']}")
for stage, v in s["stages_ms"].items():
    print(f"  {stage:<14} median {v['median_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms")
EOF
echo "gpu_check: done; raw figures in $out"
