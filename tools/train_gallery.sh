#!/usr/bin/env bash
# Train (or continue training) every style of styles/gallery.txt, one at a time: the shared
# recipe below plus each style's own flags from that list (they come last, so they win).
# Safe to rerun after any interruption: a finished style is skipped, a started one resumes.
#   bash tools/train_gallery.sh RUNS_DIR PHOTOS_DIR [extra train flags...]
# Results: RUNS_DIR/<name>.pth plus RUNS_DIR/<name>.run (samples/, styles/step_N.pth);
# look at the sample grids, then copy the best step into checkpoints/<name>.pth.
set -euo pipefail
runs=${1:?usage: train_gallery.sh RUNS_DIR PHOTOS_DIR [train flags]}
photos=${2:?usage: train_gallery.sh RUNS_DIR PHOTOS_DIR [train flags]}
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$runs"
# The canvas recipe (docs/gallery.md): the grain the network paints flat walls
# from, encoder-only padding, style up to relu5_1 at half weight, 192 px crops (strokes keep
# the style image's scale, and the CPU trains 1.8x more steps than at 256), stabilisation
# from the first step.
recipe=(--pad encoder --canvas 4 --shading 0.5 --size 192 --batch 4
  --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-layer-weights 0.5,1,1,1,0.5
  --stab-start 0 --stab-ramp 0 --checkpoint-every 100)
while read -r name painting flags; do
  run="$runs/$name.run"
  if [[ -f "$run/done" ]]; then echo "$name: done"; continue; fi
  resume=()
  [[ -f "$run/state.pth" ]] && resume=(--resume)
  flags=${flags//@RUNS/$runs}
  flags=${flags//@REPO/$here}
  echo "$name: training${resume:+ (resuming)}"
  streamnst train "$here/styles/$painting" --data "$photos" --out "$runs/$name.pth" \
    --run-dir "$run" --name "$name" "${resume[@]}" "${recipe[@]}" "$@" ${flags:+$flags}
  touch "$run/done"
done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$here/styles/gallery.txt")
