#!/usr/bin/env bash
# Train (or continue training) every style of styles/gallery.txt, one at a time: the shared
# recipe plus each style's own flags from that list. Safe to rerun after any interruption: a
# finished style is skipped, a started one resumes.
#   bash tools/train_gallery.sh RUNS_DIR PHOTOS_DIR [extra train flags...]
# Results: RUNS_DIR/<name>.pth plus RUNS_DIR/<name>.run (samples/, styles/step_N.pth);
# look at the sample grids, then copy the best step into checkpoints/<name>.pth.
set -euo pipefail
runs=${1:?usage: train_gallery.sh RUNS_DIR PHOTOS_DIR [train flags]}
photos=${2:?usage: train_gallery.sh RUNS_DIR PHOTOS_DIR [train flags]}
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$runs"
while read -r name painting flags; do
  run="$runs/$name.run"
  if [[ -f "$run/done" ]]; then echo "$name: done"; continue; fi
  resume=()
  [[ -f "$run/state.pth" ]] && resume=(--resume)
  flags=${flags//@RUNS/$runs}
  echo "$name: training${resume:+ (resuming)}"
  streamnst train "$here/styles/$painting" --data "$photos" --out "$runs/$name.pth" \
    --run-dir "$run" --name "$name" "${resume[@]}" "$@" ${flags:+$flags}
  touch "$run/done"
done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$here/styles/gallery.txt")
