#!/usr/bin/env bash
# an4 (ESPnet's smallest real recipe): HAT+IAM against vanilla HAT and RNN-T, all trained and
# decoded by the same stages with the same encoder, features, BPE 30, batches, epochs and seeds;
# run_espnet.sh adds ESPnet's hybrid CTC/attention model; local/compare.sh puts them side by side.
#
#   ./run.sh [--systems "train_hat_iam train_hat train_rnnt"] [--seeds "2024 1 2"]
#            [--decode_configs "conf/decode_beam_sym2.yaml ..."] [hat_asr.sh options]
#
# Every decoding mode by default; --decode_configs replaces them (the thresholded ones are
# still left out for RNN-T), e.g. only the main mode and dual 0.95 for further seeds.
set -euo pipefail

systems="train_hat_iam train_hat train_rnnt"
decode_only=""
seeds="2024 1 2"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --systems) systems=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --decode_configs) decode_only=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

plain_configs="conf/decode_greedy.yaml conf/decode_beam_sym1.yaml conf/decode_beam_sym2.yaml conf/decode_beam_sym3.yaml"
for algo in default alsd tsd nsc maes; do plain_configs+=" conf/decode_espnet_${algo}.yaml"; done
threshold_configs="conf/decode_iam.yaml conf/decode_hat.yaml"
for theta in 0.6 0.8 0.9 0.95 0.99; do threshold_configs+=" conf/decode_dual_${theta}.yaml"; done

for system in ${systems}; do
    decode_configs=""
    for config in ${decode_only:-${plain_configs} ${threshold_configs}}; do
        # Blank thresholding needs a HAT joint; the RNN-T baseline has no blank factorisation (and no IAM).
        case " ${threshold_configs} " in *" ${config} "*) [ "${system}" = train_rnnt ] && continue ;; esac
        decode_configs+=" ${config}"
    done
    for seed in ${seeds}; do
        ./hat_asr.sh \
            --train_set train_nodev \
            --valid_set train_dev \
            --test_sets "train_dev test" \
            --nbpe 30 \
            --asr_config "conf/${system}.yaml" \
            --asr_tag "${system}_bpe30_seed${seed}" \
            --asr_args "--seed ${seed}" \
            --inference_configs "${decode_configs# }" \
            --inference_batch_size 8 \
            --inference_nj 1 \
            "${args[@]}"
    done
done
