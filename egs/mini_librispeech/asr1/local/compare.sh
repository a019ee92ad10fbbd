#!/usr/bin/env bash
# Side by side: every exp/asr_<system>_bpe300_seed<N> decoded by run.sh / run_espnet.sh (stages 12-13),
# with paired-bootstrap significance per seed and over all seeds, and the speed/accuracy plot; then
# the same for the single best checkpoints (decoded here with the main mode when missing).
# Writes exp/RESULTS_compare.md and exp/images/speed_accuracy.png; with --update_results true also
# the tracked RESULTS.md and images/.
#
#   local/compare.sh [--update_results true]
set -euo pipefail
. ./path.sh

update_results=false
main_mode=beam_sym2   # max_sym_per_frame 2, an4's choice on its train_dev (not yet re-chosen on dev here)
while [ $# -gt 0 ]; do
    case "$1" in
        --update_results) update_results=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --update_results true|false)" >&2; exit 2 ;;
    esac
done
sets="dev test"
data_opts=(--train_set train --valid_set dev --test_sets "${sets}" --nbpe 300)

# The single best checkpoint of each system, decoded with the main mode only.
for exp in exp/asr_train_hat_iam_* exp/asr_train_hat_bpe*; do
    [ -f "${exp}/valid.wer.best.pth" ] || continue
    name=${exp#exp/asr_}
    ./hat_asr.sh "${data_opts[@]}" --asr_config "conf/${name%_bpe300_seed*}.yaml" --asr_tag "${name}" \
        --inference_model valid.wer.best.pth --inference_configs "conf/decode_${main_mode}.yaml" \
        --inference_batch_size 8 --inference_nj 1 --stage 12 --stop_stage 13
done
for exp in exp/asr_train_espnet_ctc_att_*; do
    [ -f "${exp}/valid.wer.best.pth" ] || continue
    ./hat_asr.sh --asr_task espnet "${data_opts[@]}" --asr_config conf/train_espnet_ctc_att.yaml \
        --asr_tag "${exp#exp/asr_}" --inference_model valid.wer.best.pth \
        --inference_configs conf/decode_espnet_ctc_att.yaml --inference_nj 1 --stage 12 --stop_stage 13
done

pairs="train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att"
pairs+=" train_hat_iam@dual_0.95:train_hat_iam@${main_mode} train_hat_iam@greedy:train_hat_iam@${main_mode}"
pairs+=" train_hat_iam@beam_sym1:train_hat_iam@${main_mode}"
systems=$(ls -d exp/asr_*_seed* | sed 's#exp/asr_\(.*\)_bpe300_seed.*#\1#' | sort -u | tr '\n' ' ')
present_pairs=""
for pair in ${pairs}; do  # only pairs whose systems were trained
    a=${pair%%:*}; b=${pair#*:}
    case " ${systems} " in *" ${a%%@*} "*) ;; *) continue ;; esac
    case " ${systems} " in *" ${b%%@*} "*) present_pairs+=" ${pair}" ;; esac
done
for model in valid.wer.ave valid.wer.best; do
    plot_opts=""
    [ "${model}" = valid.wer.ave ] && plot_opts="--plot exp/images/speed_accuracy.png --plot_system train_hat_iam --plot_set test"
    # shellcheck disable=SC2086
    python -m espnet_hatiam.bin.compare_systems --exps exp/asr_* --ref_dir dump/raw --sets "${sets}" \
        --model "${model}" --main_mode "${main_mode}" --pairs "${present_pairs# }" ${plot_opts} --out "exp/compare_${model}.md"
done
{
    echo "# mini_librispeech: HAT+IAM against vanilla HAT and ESPnet CTC/attention"
    echo
    echo "- made by \`local/compare.sh\` on $(date -u '+%Y-%m-%d'), $(uname -m), $(nproc) CPU cores; python $(python -c 'import platform; print(platform.python_version())'), torch $(python -c 'import torch; print(torch.__version__)'), espnet $(python -c 'import espnet; print(espnet.__version__)'), code of git $(git -C "$(python -c 'import espnet_hatiam, os; print(os.path.dirname(espnet_hatiam.__file__))')" rev-parse --short HEAD) (where espnet_hatiam was imported from)"
    echo "- data: train (26 train-clean-5 speakers, 1,434 utterances, 5.02 h) / dev (speakers 1970, 3242: 85) / test (dev-clean-2: 1,089); BPE 300; 4-block 144-dim conformer for every system; 30 epochs"
    echo "- decoded model: \`valid.wer.ave.pth\` (average of the 5 best checkpoints by dev WER); the single best checkpoint below"
    echo "- main mode: \`${main_mode}\` (beam 4, at most 2 labels per frame); timings from the recipe's decoding jobs (1 job of 1 thread; see each exp/asr_*/RESULTS.md)"
    echo "- published anchor on dev-clean-2 (test): Kaldi chain TDNN tdnn_1j, 10.78 % WER with its small trigram LM, 7.43 % rescored with the large LM"
    echo
    sed '1d' exp/compare_valid.wer.ave.md | sed 's/^## /### /; 1s/^/## Average of the 5 best checkpoints\n/'
    echo
    sed '1d' exp/compare_valid.wer.best.md | sed 's/^## /### /; 1s/^/## Single best checkpoint\n/'
} > exp/RESULTS_compare.md
echo "$0: wrote exp/RESULTS_compare.md"
if [ "${update_results}" = true ]; then
    mkdir -p images
    cp exp/images/speed_accuracy.png images/speed_accuracy.png
    cp exp/RESULTS_compare.md RESULTS.md  # its figure link, images/..., holds in both places
    echo "$0: RESULTS.md and images/ refreshed"
fi
