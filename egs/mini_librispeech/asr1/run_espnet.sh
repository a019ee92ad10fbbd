#!/usr/bin/env bash
# mini_librispeech: ESPnet's hybrid CTC/attention model (espnet2.bin.asr_train / Speech2Text, joint
# CTC/attention beam search) through the same stages, data, features, SpecAugment, BPE and seeds as run.sh.
#
#   ./run_espnet.sh [--seeds "2024 1 2"] [hat_asr.sh options]
set -euo pipefail

seeds="2024 1 2"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

for seed in ${seeds}; do
    ./hat_asr.sh \
        --asr_task espnet \
        --train_set train \
        --valid_set dev \
        --test_sets "dev test" \
        --nbpe 300 \
        --asr_config conf/train_espnet_ctc_att.yaml \
        --asr_tag "train_espnet_ctc_att_bpe300_seed${seed}" \
        --asr_args "--seed ${seed}" \
        --inference_configs conf/decode_espnet_ctc_att.yaml \
        --inference_batch_size 1 \
        --inference_nj 1 \
        "${args[@]}"
done
