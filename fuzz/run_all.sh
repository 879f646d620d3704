#!/usr/bin/env bash
# Run every harness in parallel for SECONDS_TOTAL seconds (default 3600), restarting a harness
# whose process stops early (a libFuzzer crash/timeout file, or a crash inside C code), and
# keeping cumulative totals in $ALPSDX_FUZZ_DIR/stats-<parser>.json. Run by hand:
#   ALPSDX_FUZZ_DIR=/tmp/alpsdx-fuzz fuzz/run_all.sh 3600 [parser ...]
set -u
cd "$(dirname "$0")/.."
TOTAL=${1:-3600}; shift || true
PARSERS=${*:-"fcs case hgvs vcf fhir fhir_struct cds gatingml"}
export ALPSDX_FUZZ_DIR=${ALPSDX_FUZZ_DIR:-/tmp/alpsdx-fuzz}
PY=${PYTHON:-.venv/bin/python}
END=$(( $(date +%s) + TOTAL ))
mkdir -p "$ALPSDX_FUZZ_DIR/logs" "$ALPSDX_FUZZ_DIR/artifacts"
for p in $PARSERS; do
  (
    while [ "$(date +%s)" -lt "$END" ]; do
      left=$(( END - $(date +%s) ))
      nice -n 10 "$PY" "fuzz/fuzz_$p.py" --resume -max_total_time="$left" -print_final_stats=1 \
        -artifact_prefix="$ALPSDX_FUZZ_DIR/artifacts/$p-" >>"$ALPSDX_FUZZ_DIR/logs/$p.log" 2>&1
      echo "[run_all] $p exited with $? at $(date -u +%FT%TZ)" >>"$ALPSDX_FUZZ_DIR/logs/$p.log"
      sleep 1
    done
  ) &
done
wait
