#!/usr/bin/env bash
# Side by side: every exp/asr_<system>_bpe30_seed<N> decoded by run.sh / run_espnet.sh (stages 12-13),
# with paired-bootstrap significance per seed and over all seeds, and the speed/accuracy plot; then
# the same for the single best checkpoints (decoded here with the main mode when missing).
# Writes exp/RESULTS_compare.md and exp/images/{speed_accuracy,learning_curves}.png; with --update_results true also
# the tracked RESULTS.md and images/.
#
#   local/compare.sh [--update_results true]
set -euo pipefail
. ./path.sh

update_results=false
main_mode=beam_sym2   # max_sym_per_frame 2, chosen on train_dev (RESULTS.md)
while [ $# -gt 0 ]; do
    case "$1" in
        --update_results) update_results=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --update_results true|false)" >&2; exit 2 ;;
    esac
done

# The single best checkpoint of each transducer system, decoded with the main mode only.
for exp in exp/asr_train_hat_iam_* exp/asr_train_hat_bpe* exp/asr_train_rnnt_*; do
    [ -f "${exp}/valid.wer.best.pth" ] || continue
    name=${exp#exp/asr_}
    ./hat_asr.sh --train_set train_nodev --valid_set train_dev --test_sets "train_dev test" --nbpe 30 \
        --asr_config "conf/${name%_bpe30_seed*}.yaml" --asr_tag "${name}" --inference_model valid.wer.best.pth \
        --inference_configs "conf/decode_${main_mode}.yaml" --inference_batch_size 8 --inference_nj 1 --stage 12 --stop_stage 13
done
for exp in exp/asr_train_espnet_ctc_att_*; do
    [ -f "${exp}/valid.wer.best.pth" ] || continue
    ./hat_asr.sh --asr_task espnet --train_set train_nodev --valid_set train_dev --test_sets "train_dev test" \
        --nbpe 30 --asr_config conf/train_espnet_ctc_att.yaml --asr_tag "${exp#exp/asr_}" \
        --inference_model valid.wer.best.pth --inference_configs conf/decode_espnet_ctc_att.yaml --stage 12 --stop_stage 13
done

pairs="train_hat_iam:train_hat train_hat_iam:train_rnnt train_hat_iam:train_espnet_ctc_att"
pairs+=" train_hat_iam@dual_0.95:train_hat_iam@${main_mode} train_hat_iam@greedy:train_hat_iam@${main_mode}"
pairs+=" train_hat_iam@beam_sym1:train_hat_iam@${main_mode}"
systems=$(ls -d exp/asr_*_seed* | sed 's#exp/asr_\(.*\)_bpe30_seed.*#\1#' | sort -u | tr '\n' ' ')
present_pairs=""
for pair in ${pairs}; do  # only pairs whose systems were trained
    a=${pair%%:*}; b=${pair#*:}
    case " ${systems} " in *" ${a%%@*} "*) ;; *) continue ;; esac
    case " ${systems} " in *" ${b%%@*} "*) present_pairs+=" ${pair}" ;; esac
done
python -m espnet_hatiam.bin.compare_systems --exps exp/asr_* --ref_dir dump/raw --sets "train_dev test" \
    --model valid.wer.ave --main_mode "${main_mode}" --pairs "${present_pairs# }" \
    --plot exp/images/speed_accuracy.png --plot_system train_hat_iam --plot_set test \
    --curves exp/images/learning_curves.png --out exp/compare_valid.wer.ave.md
system_pairs=$(echo "${present_pairs}" | tr ' ' '\n' | grep -v @ | tr '\n' ' ')  # single best: main mode only
python -m espnet_hatiam.bin.compare_systems --exps exp/asr_* --ref_dir dump/raw --sets "train_dev test" \
    --model valid.wer.best --main_mode "${main_mode}" --pairs "${system_pairs# }" --out exp/compare_valid.wer.best.md
{
    echo "# an4: HAT+IAM against vanilla HAT, RNN-T and ESPnet CTC/attention"
    echo
    echo "- made by \`local/compare.sh\` on $(date -u '+%Y-%m-%d'), $(uname -m), $(nproc) CPU cores; python $(python -c 'import platform; print(platform.python_version())'), torch $(python -c 'import torch; print(torch.__version__)'), espnet $(python -c 'import espnet; print(espnet.__version__)'), code of git $(git -C "$(python -c 'import espnet_hatiam, os; print(os.path.dirname(espnet_hatiam.__file__))')" rev-parse --short HEAD) (where espnet_hatiam was imported from)"
    echo "- data: train_nodev (848 utterances, 0.63 h) / train_dev (100) / test (117); BPE 30; 4-block 144-dim conformer for every system; 26 epochs"
    echo "- decoded model: \`valid.wer.ave.pth\` (average of the 5 best checkpoints by validation WER); the single best checkpoint below"
    echo "- main mode: \`${main_mode}\` (beam 4, at most 2 labels per frame). RTF and search seconds come from the recipe's decoding jobs (1 job of 1 thread, batches of 8): in this run they were measured beside a training and other decodes, so they do not compare across rows; speed ratios come from bench/decode_speed.py (all rows in one process)"
    echo
    sed '1d' exp/compare_valid.wer.ave.md | sed 's/^## /### /; 1s/^/## Average of the 5 best checkpoints\n/'
    echo
    sed '1d' exp/compare_valid.wer.best.md | sed 's/^## /### /; 1s/^/## Single best checkpoint\n/'
} > exp/RESULTS_compare.md
echo "$0: wrote exp/RESULTS_compare.md"
if [ "${update_results}" = true ]; then
    mkdir -p images
    cp exp/images/speed_accuracy.png exp/images/learning_curves.png images/
    cp exp/RESULTS_compare.md RESULTS.md  # its figure link, images/..., holds in both places
    echo "$0: RESULTS.md and images/ refreshed"
fi
