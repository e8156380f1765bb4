#!/usr/bin/env bash
# One GPU job (a lent accelerator with its own python3 and torch, no network): a dev round of
# scratch-ResNet configs on the EmoDB-4 LOSO dev speakers, the choice among them on dev
# (scripts/choose_on_dev.py), then the test grid of the chosen config and its seed ensembles.
# Everything needed travels in .devcarry/ (wheels the machine lacks, the emodb-full audio).
#   bash scripts/gpu_dev_round.sh OUT_DIR DEV_CONFIG...
set -uo pipefail
out=$1; shift
logs=$(mktemp -d)  # the machine returns few files: logs travel as one archive
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
log() { echo "[$(elapsed) s] $*"; }

export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src"
python3 -m pip install -q --no-deps --no-index .devcarry/wheels/*.whl 2>&1 | tail -2
cps() { python3 -c 'import sys; from copypaste_ser.cli import main; sys.argv[0] = "copypaste-ser"; sys.exit(main())' "$@"; }
export -f cps  # for the `timeout bash -c` subshells below
python3 -c 'import torch, soundfile, soxr, kaldi_native_fbank, copypaste_ser.cli; print(torch.__version__, torch.cuda.get_device_name(0))' || exit 3
[ -f data/emodb4full/manifest.jsonl ] || cps prepare emodb --classes paper4 --root .devcarry/emodb-full --out data/emodb4full | tail -1 || exit 4

log "dev round: ${#@} configs at once, 2 workers each"
for config in "$@"; do
  name=$(basename "$config" .yaml)
  (timeout 330 bash -c "cps grid $config --workers 2" > "$logs/$name.log" 2>&1; echo "$name exit $?") &
done
wait
log "dev round done"
python3 scripts/dev_scores.py runs/dev-emodb4-scratch-* | tee "$logs/dev-scores.txt"
python3 scripts/choose_on_dev.py "$@" --out configs/emodb4-small-dev3-loso.yaml \
  --grid-out ../runs/grid-emodb4-small-dev3-loso | tee "$logs/choice.txt"
cp configs/emodb4-small-dev3-loso.yaml "$logs/"

log "test grid"
timeout 170 bash -c "cps grid configs/emodb4-small-dev3-loso.yaml --workers 14" > "$logs/test-grid.log" 2>&1
log "test grid exit $?"
cps ensemble runs/grid-emodb4-small-dev3-loso --split dev --out runs/ens-dev-small-dev3 > "$logs/ens-dev.log" 2>&1
cps ensemble runs/grid-emodb4-small-dev3-loso --out runs/ens-test-small-dev3 > "$logs/ens-test.log" 2>&1
log "ensembles done"
tail -n 25 "$logs"/ens-*.log "$logs/test-grid.log"

# runs without their weights: 60 models (about 1.2 MB each) exceed what the machine sends back
# (16 MB a file), so noisy tests of these runs are not possible afterwards
tar czf "$out/dev-runs.tgz" --exclude='*.pt' --exclude='*.png' runs/dev-emodb4-scratch-*
tar czf "$out/test-runs.tgz" --exclude='*.pt' --exclude='*.png' runs/grid-emodb4-small-dev3-loso runs/ens-*
tar czf "$out/logs.tgz" -C "$logs" .
ls -la "$out"
log "all done"
