#!/usr/bin/env bash
# Run every harness in parallel for SECONDS_TOTAL seconds (default 3600), restarting a harness
# whose process stops early (a libFuzzer crash/timeout file, or a crash inside C code), and
# keeping cumulative totals in $ALPSDX_FUZZ_DIR/stats-<parser>.json. Run by hand:
#   ALPSDX_FUZZ_DIR=/tmp/alpsdx-fuzz fuzz/run_all.sh 3600 [parser ...]
# With ALPSDX_FUZZ_TARGET=N (e.g. 1000000) a harness stops once its stats file counts N inputs,
# leaving the cores to the slower harnesses.
set -u
cd "$(dirname "$0")/.."
TOTAL=${1:-3600}; shift || true
PARSERS=${*:-"fcs case hgvs vcf fhir fhir_struct cds gatingml user_gates"}
export ALPSDX_FUZZ_DIR=${ALPSDX_FUZZ_DIR:-/tmp/alpsdx-fuzz}
PY=${PYTHON:-.venv/bin/python}
TARGET=${ALPSDX_FUZZ_TARGET:-0}
END=$(( $(date +%s) + TOTAL ))
mkdir -p "$ALPSDX_FUZZ_DIR/logs" "$ALPSDX_FUZZ_DIR/artifacts"

done_inputs() {  # inputs counted so far in the stats file of parser $1 (0 when none)
  "$PY" -c 'import json,sys
try: print(json.load(open(sys.argv[1]))["inputs"])
except (OSError, ValueError, KeyError): print(0)' "$ALPSDX_FUZZ_DIR/stats-$1.json"
}

for p in $PARSERS; do
  (
    while [ "$(date +%s)" -lt "$END" ]; do
      left=$(( END - $(date +%s) ))
      runs=()
      if [ "$TARGET" -gt 0 ]; then
        todo=$(( TARGET - $(done_inputs "$p") ))
        if [ "$todo" -le 0 ]; then
          echo "[run_all] $p reached $TARGET inputs at $(date -u +%FT%TZ)" >>"$ALPSDX_FUZZ_DIR/logs/$p.log"
          break
        fi
        runs=("-runs=$todo")
      fi
      nice -n "${ALPSDX_FUZZ_NICE:-10}" "$PY" "fuzz/fuzz_$p.py" --resume -max_total_time="$left" \
        -print_final_stats=1 "${runs[@]}" \
        -artifact_prefix="$ALPSDX_FUZZ_DIR/artifacts/$p-" >>"$ALPSDX_FUZZ_DIR/logs/$p.log" 2>&1
      echo "[run_all] $p exited with $? at $(date -u +%FT%TZ)" >>"$ALPSDX_FUZZ_DIR/logs/$p.log"
      sleep 1
    done
  ) &
done
wait
