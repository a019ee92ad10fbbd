#!/usr/bin/env bash
# Side by side: every exp/asr_<system>_bpe30_seed<N> decoded by run.sh / run_espnet.sh (stages 12-13),
# with paired-bootstrap significance per seed and over all seeds, and the speed/accuracy plot.
# Writes exp/RESULTS_compare.md and exp/images/speed_accuracy.png; with --update_results true also
# the tracked RESULTS.md and images/.
#
#   local/compare.sh [--update_results true]
set -euo pipefail
. ./path.sh

update_results=false
while [ $# -gt 0 ]; do
    case "$1" in
        --update_results) update_results=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --update_results true|false)" >&2; exit 2 ;;
    esac
done

python -m espnet_hatiam.bin.compare_systems --exps exp/asr_* --ref_dir dump/raw --sets "train_dev test" \
    --main_mode beam \
    --pairs "train_hat_iam:train_hat train_hat_iam:train_rnnt train_hat_iam:train_espnet_ctc_att train_hat_iam@dual_0.95:train_hat_iam@beam train_hat_iam@greedy:train_hat_iam@beam" \
    --plot exp/images/speed_accuracy.png --plot_system train_hat_iam --plot_set test \
    --out exp/RESULTS_compare.md
if [ "${update_results}" = true ]; then
    mkdir -p images
    cp exp/images/speed_accuracy.png images/speed_accuracy.png
    cp exp/RESULTS_compare.md RESULTS.md  # its figure link, images/..., holds in both places
    echo "$0: RESULTS.md and images/ refreshed"
fi
