#!/usr/bin/env bash
# Side by side: every exp/asr_<system>_bpe5000_seed<N> decoded by run.sh / run_espnet.sh (stages 12-13),
# with paired-bootstrap significance per seed and over all seeds, and the speed/accuracy plot; then
# the same for the single best checkpoints (decoded here with the main mode when missing).
# Writes exp/RESULTS_compare.md and exp/images/speed_accuracy.png; with --update_results true also
# the tracked RESULTS.md and images/.
#
#   local/compare.sh [--update_results true] [--gpu_inference true|false]
set -euo pipefail
. ./path.sh

update_results=false
gpu_inference=true
main_mode=beam_sym2   # max_sym_per_frame 2, an4's choice on its train_dev (not yet re-chosen on dev here)
while [ $# -gt 0 ]; do
    case "$1" in
        --update_results) update_results=$2; shift 2 ;;
        --gpu_inference) gpu_inference=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --update_results true|false, --gpu_inference true|false)" >&2; exit 2 ;;
    esac
done
sets="dev_clean dev_other test_clean test_other"
data_opts=(--train_set train_clean_100 --valid_set dev --test_sets "${sets}" --speed_perturb_factors "0.9 1.0 1.1"
           --nbpe 5000 --gpu_inference "${gpu_inference}")

# The single best checkpoint of each system, decoded with the main mode only.
for exp in exp/asr_train_hat_iam_* exp/asr_train_hat_bpe*; do
    [ -f "${exp}/valid.wer.best.pth" ] || continue
    name=${exp#exp/asr_}
    ./hat_asr.sh "${data_opts[@]}" --asr_config "conf/${name%_bpe5000_seed*}.yaml" --asr_tag "${name}" \
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
systems=$(ls -d exp/asr_*_seed* | sed 's#exp/asr_\(.*\)_bpe5000_seed.*#\1#' | sort -u | tr '\n' ' ')
present_pairs=""
for pair in ${pairs}; do  # only pairs whose systems were trained
    a=${pair%%:*}; b=${pair#*:}
    case " ${systems} " in *" ${a%%@*} "*) ;; *) continue ;; esac
    case " ${systems} " in *" ${b%%@*} "*) present_pairs+=" ${pair}" ;; esac
done
for model in valid.wer.ave valid.wer.best; do
    plot_opts=""
    [ "${model}" = valid.wer.ave ] && plot_opts="--plot exp/images/speed_accuracy.png --plot_system train_hat_iam --plot_set test_other"
    # shellcheck disable=SC2086
    python -m espnet_hatiam.bin.compare_systems --exps exp/asr_* --ref_dir dump/raw --sets "${sets}" \
        --model "${model}" --main_mode "${main_mode}" --pairs "${present_pairs# }" ${plot_opts} --out "exp/compare_${model}.md"
done
{
    echo "# librispeech_100: HAT+IAM against vanilla HAT and ESPnet CTC/attention"
    echo
    echo "- made by \`local/compare.sh\` on $(date -u '+%Y-%m-%d'), $(uname -m), $(nproc) CPU cores; python $(python -c 'import platform; print(platform.python_version())'), torch $(python -c 'import torch; print(torch.__version__)'), espnet $(python -c 'import espnet; print(espnet.__version__)'), code of git $(git -C "$(python -c 'import espnet_hatiam, os; print(os.path.dirname(espnet_hatiam.__file__))')" rev-parse --short HEAD) (where espnet_hatiam was imported from)"
    echo "- data: train_clean_100 (28,539 utterances, 100.6 h) x speed 0.9/1.0/1.1 / dev (dev-clean + dev-other) / dev_clean, dev_other, test_clean, test_other; BPE 5000; 12-block 256-dim conformer for every system; 70 epochs"
    echo "- decoded model: \`valid.wer.ave.pth\` (average of the 10 best checkpoints by dev WER); the single best checkpoint below"
    echo "- main mode: \`${main_mode}\` (beam 4, at most 2 labels per frame); timings from the recipe's decoding jobs (1 job; see each exp/asr_*/RESULTS.md)"
    echo "- published, test-clean / test-other WER: ESPnet conformer transducer 6.9 / 18.1 %, ESPnet conformer CTC/attention 6.5 / 17.3 %, icefall pruned transducer (train-clean-100) 6.6 / 17.2 %"
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
