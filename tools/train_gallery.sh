#!/usr/bin/env bash
# Train (or continue training) every bundled style, one at a time: the shared recipe plus
# each style's own weights (below). Safe to rerun after any interruption: a finished style
# is skipped, a started one resumes.
#   bash tools/train_gallery.sh RUNS_DIR PHOTOS_DIR [extra train flags...]
# Results: RUNS_DIR/<name>.pth plus RUNS_DIR/<name>.run (samples/, styles/step_N.pth);
# look at the sample grids, then copy the best step into checkpoints/<name>.pth.
# A style's own flags (after its painting in the list) follow the shared ones, so they win:
# paintings differ in how hard their Gram loss pulls (a flat print against dense strokes).
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
  echo "$name: training${resume:+ (resuming)}"
  streamnst train "$here/styles/$painting" --data "$photos" --out "$runs/$name.pth" \
    --run-dir "$run" --name "$name" "${resume[@]}" "$@" ${flags:+$flags}
  touch "$run/done"
done <<'LIST'
starry_night vangogh_starry_night_1889.jpg
great_wave hokusai_great_wave_c1831.jpg --style-weight 4
the_scream munch_the_scream_1893.jpg --style-weight 0.6
composition_vii kandinsky_composition_vii_1913.jpg --style-weight 0.8 --style-size 512
udnie picabia_udnie_1913.jpg --style-weight 0.8
woman_with_a_hat matisse_woman_with_a_hat_1905.jpg
LIST
