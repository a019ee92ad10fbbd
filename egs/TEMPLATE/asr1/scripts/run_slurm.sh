#!/usr/bin/env bash
# Slurm job runner with ESPnet's slurm.pl interface:
#   run_slurm.sh [JOB=1:N] LOG COMMAND...
# Submits one array job (sbatch --wait), JOB becomes the array index. Extra sbatch options
# come from $SLURM_OPTS (e.g. "--partition cpu --time 4:00:00 --cpus-per-task 2").
set -euo pipefail
array="1-1"
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    array="${BASH_REMATCH[1]}-${BASH_REMATCH[2]}"; shift
fi
[ $# -ge 2 ] || { echo "usage: $0 [JOB=1:N] LOG COMMAND..." >&2; exit 2; }
command -v sbatch >/dev/null || { echo "$0: sbatch not found; use cmd_backend=local in cmd.sh" >&2; exit 2; }
log=$1; shift
mkdir -p "$(dirname "${log}")"
script=$(mktemp)
{
    echo "#!/usr/bin/env bash"
    echo "cd $(printf '%q' "$(pwd)")"
    printf '%q ' "$@" | sed 's/JOB/${SLURM_ARRAY_TASK_ID}/g'
    echo
} > "${script}"
# shellcheck disable=SC2086
sbatch --wait --array="${array}" --output="${log//JOB/%a}" ${SLURM_OPTS:-} "${script}"
