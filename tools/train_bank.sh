#!/usr/bin/env bash
# Train (or continue) the shared style bank of styles/bank.txt, on any machine:
#   bash tools/train_bank.sh RUN_DIR PHOTOS_DIR [extra train-bank flags]
# PHOTOS_DIR: `python tools/bank_photos.py PHOTOS_DIR` builds it from ../shared/data.
# A run directory with a state resumes exactly. A fresh one starts from the committed bank
# (checkpoints/gallery.bank.pth: its trunk, modulations and step count) when there
# is one, else from the default style. Copy RUN_DIR/gallery.bank.pth back there and commit
# it every hour or so; the next machine goes on from it.
set -euo pipefail
run=${1:?usage: train_bank.sh RUN_DIR PHOTOS_DIR [flags]}
photos=${2:?usage: train_bank.sh RUN_DIR PHOTOS_DIR [flags]}
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mkdir -p "$run"
committed=checkpoints/gallery.bank.pth
resume=()
if [[ -f $run/run/state.pth ]]; then
  resume=(--resume)
elif [[ ! -f $run/init_from ]]; then
  # the start is fixed for the life of a run directory (a resume must name the same one)
  if [[ -f $committed ]]; then
    cp "$committed" "$run/start.bank.pth" && echo "$run/start.bank.pth" > "$run/init_from"
  else
    echo checkpoints/starry_night.pth > "$run/init_from"
  fi
fi
# the gallery's canvas recipe (docs/gallery.md), 4 crops a step; the bank shipped at 15,000
# steps and goes on to 30,000 (its step count travels in the committed file)
exec streamnst train-bank styles/bank.txt --data "$photos" --out "$run/gallery.bank.pth" \
  --run-dir "$run/run" "${resume[@]}" --init-from "$(cat "$run/init_from")" \
  --pad encoder --canvas 4 --shading 0.5 --size 192 --batch 4 \
  --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-layer-weights 0.5,1,1,1,0.5 \
  --stab-start 0 --stab-ramp 0 --noise-weight 20 --motion-weight 30 --style-weight 2 \
  --steps 30000 --checkpoint-every 250 "$@"
