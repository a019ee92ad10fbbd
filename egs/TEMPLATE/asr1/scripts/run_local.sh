#!/usr/bin/env bash
# Local job runner with ESPnet's run.pl interface:
#   run_local.sh [JOB=1:N] LOG COMMAND...
# Replaces JOB in LOG and COMMAND by 1..N, runs the jobs in parallel, waits, and fails
# (naming the failed logs) if any job fails. Each log starts with the command line.
set -uo pipefail
range=""
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    first=${BASH_REMATCH[1]}; last=${BASH_REMATCH[2]}; range=1; shift
else
    first=1; last=1
fi
[ $# -ge 2 ] || { echo "usage: $0 [JOB=1:N] LOG COMMAND..." >&2; exit 2; }
log_pattern=$1; shift
pids=(); logs=()
for ((n = first; n <= last; n++)); do
    if [ -n "${range}" ]; then
        log=${log_pattern//JOB/$n}; args=("${@//JOB/$n}")
    else
        log=${log_pattern}; args=("$@")
    fi
    mkdir -p "$(dirname "${log}")"
    ( echo "# ${args[*]}"; echo "# started at $(date)"; "${args[@]}"; rc=$?; echo "# ended at $(date) with status ${rc}"; exit ${rc} ) > "${log}" 2>&1 &
    pids+=($!); logs+=("${log}")
done
failed=()
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${logs[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "$0: ${#failed[@]} of ${#pids[@]} jobs failed; see: ${failed[*]}" >&2
    tail -n 20 "${failed[0]}" >&2
    exit 1
fi
