# Job runners used by hat_asr.sh (ESPnet's cmd.sh convention).
# cmd_backend=local runs jobs as parallel processes on this machine;
# cmd_backend=slurm submits array jobs (options in $SLURM_OPTS).
cmd_backend=${cmd_backend:-local}
case "${cmd_backend}" in
    local) train_cmd="scripts/run_local.sh"; decode_cmd="scripts/run_local.sh" ;;
    slurm) train_cmd="scripts/run_slurm.sh"; decode_cmd="scripts/run_slurm.sh" ;;
    *) echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2; return 1 ;;
esac
