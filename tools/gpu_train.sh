#!/usr/bin/env bash
# Train many styles at once on one GPU, each as its own `streamnst train` process, all
# stopped (and saved: SIGTERM saves like Ctrl+C) at one deadline. Built for a short GPU lease:
# checkpoints, the latest sample grid and the logs are packed into OUT_DIR every 30 s, so
# whatever finished comes back even if the lease ends first.
#   bash tools/gpu_train.sh JOBS_FILE PHOTOS_DIR RUNS_DIR OUT_DIR DEADLINE_S [train flags...]
# JOBS_FILE lines: RUN_NAME STYLE_NAME PAINTING(in styles/) [that run's own train flags]
# ('#' comments; `@INIT` in flags stands for the folder holding JOBS_FILE).
# Tars in OUT_DIR: <group>.tar per run-name prefix up to the first '_' (checkpoints),
# samples_<group>.tar (each run's latest sample grid), logs.tar (logs, *.json, losses.csv).
set -uo pipefail
jobs_file=${1:?usage: gpu_train.sh JOBS PHOTOS RUNS OUT DEADLINE_S [flags]}
photos=${2:?}; runs=${3:?}; out=${4:?}; deadline=${5:?}
shift 5
here=$(cd "$(dirname "$0")/.." && pwd)
init=$(cd "$(dirname "$jobs_file")" && pwd)
mkdir -p "$runs" "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

pack() {  # write-then-rename, so a lease ending mid-pack leaves the previous tar whole
  (cd "$runs" || exit
   for group in $(ls ./*.pth 2>/dev/null | sed 's|^\./||; s|_.*||' | sort -u); do
     tar -cf "$out/.$group.tar" "$group"_*.pth 2>/dev/null && mv "$out/.$group.tar" "$out/$group.tar"
     samples=()
     for run in ./"$group"_*.run; do
       last=$(ls "$run"/samples/*.png 2>/dev/null | tail -1)
       [[ -n $last ]] && samples+=("$last")
     done
     ((${#samples[@]})) && tar -cf "$out/.samples_$group.tar" "${samples[@]}" \
       && mv "$out/.samples_$group.tar" "$out/samples_$group.tar"
   done
   tar -cf "$out/.logs.tar" ./*.log ./*.json ./*.run/losses.csv 2>/dev/null
   mv "$out/.logs.tar" "$out/logs.tar")
}

while read -r run name painting flags; do
  flags=${flags//@INIT/$init}
  # shellcheck disable=SC2086  # flags are words
  timeout -s TERM -k 60 "$deadline" python3 -m streamnst train "$here/styles/$painting" \
    --data "$photos" --out "$runs/$run.pth" --run-dir "$runs/$run.run" --name "$name" \
    "$@" $flags > "$runs/$run.log" 2>&1 &
  echo "started $run (pid $!)"
done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$jobs_file")

start=$SECONDS
while (( $(jobs -rp | wc -l) > 0 )); do
  sleep 30
  pack
  echo "t=$((SECONDS - start))s running=$(jobs -rp | wc -l) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"
  for run in "$runs"/*.run; do
    printf '  %-24s %s\n' "$(basename "$run" .run)" "$(tail -1 "$run/losses.csv" 2>/dev/null | cut -c1-90)"
  done
done
wait
pack
echo "done after $((SECONDS - start))s"
