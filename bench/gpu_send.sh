#!/usr/bin/env bash
# Get the working tree ready for a device-tool call that carries the real data, and put it back after.
# The tool sends tracked files plus the carried folders, at most 64 MiB in all: the archived runs
# (docs/runs, about 46 MiB) and the data (about 36 MiB) do not fit together, so for the call the runs
# leave the git index (the files stay on disk) and the data goes in an ignored folder, .gpudata.
#     bash bench/gpu_send.sh prepare [RUN...]   # RUN: archived runs to send too (for gpu_check.sh RESUME=)
#     ... run(carry=[".gpudata"], command=...)  # see bench/gpu_check.sh's header
#     bash bench/gpu_send.sh restore
# DATA (default ../shared/data/chest_xray_224) is the folder copied. Both steps refuse rather than guess:
# prepare wants a clean tree, and restore puts back exactly the exclude file prepare found.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
DATA=${DATA:-../shared/data/chest_xray_224}
EXCLUDE=.git/info/exclude
SAVED=.git/info/exclude.before-gpu-send

case "${1:-}" in
  prepare)
    shift
    [ -e "$SAVED" ] && { echo "gpu_send: already prepared ($SAVED exists); run restore first"; exit 2; }
    [ -z "$(git status --porcelain)" ] || { echo "gpu_send: the tree has changes; commit or stash them first"; exit 2; }
    [ -d "$DATA" ] || { echo "gpu_send: no data folder at $DATA; set DATA=path/to/chest_xray_224"; exit 2; }
    for run in "$@"; do
      [ -f "$run/manifest.json" ] || { echo "gpu_send: $run is not a run (no manifest.json)"; exit 2; }
    done
    mkdir -p .git/info
    if [ -e "$EXCLUDE" ]; then cp "$EXCLUDE" "$SAVED"; else : > "$SAVED.absent"; touch "$SAVED"; fi
    printf '/docs/runs/\n/.gpudata/\n' >> "$EXCLUDE"
    git rm -r -q --cached docs/runs
    mkdir -p .gpudata
    cp -r "$DATA" .gpudata/
    for run in "$@"; do cp -r "$run" .gpudata/; done
    echo "prepared: docs/runs out of the index, .gpudata holds $(ls .gpudata | tr '\n' ' ')"
    echo "tracked $(git ls-files -z | xargs -0 stat -c %s | awk '{s+=$1} END {printf "%.1f", s/1048576}') MiB," \
         "carried $(du -sb .gpudata | awk '{printf "%.1f", $1/1048576}') MiB"
    ;;
  restore)
    [ -e "$SAVED" ] || { echo "gpu_send: nothing to restore (no $SAVED)"; exit 2; }
    git reset -q -- docs/runs
    rm -rf .gpudata
    if [ -e "$SAVED.absent" ]; then rm -f "$EXCLUDE" "$SAVED.absent"; else cp "$SAVED" "$EXCLUDE"; fi
    rm -f "$SAVED"
    git status --short | head -5
    echo "restored"
    ;;
  *)
    echo "usage: bash bench/gpu_send.sh prepare [RUN...] | restore"; exit 2 ;;
esac
