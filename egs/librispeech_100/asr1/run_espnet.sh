#!/usr/bin/env bash
# librispeech_100: ESPnet's hybrid CTC/attention conformer (espnet2.bin.asr_train / Speech2Text, joint
# CTC/attention beam search, beam 20) through the same stages, data, features, SpecAugment, BPE and
# seeds as run.sh; ESPnet's egs2/librispeech_100 conformer recipe.
#
#   ./run_espnet.sh [--seeds 2024] [--ngpu 1] [--gpu_inference true] [--asr_args "..."] [hat_asr.sh options]
set -euo pipefail

seeds="2024"
ngpu=1
gpu_inference=true
asr_args=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --ngpu) ngpu=$2; shift 2 ;;
        --gpu_inference) gpu_inference=$2; shift 2 ;;
        --asr_args) asr_args=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
[ "${ngpu}" -gt 1 ] && asr_args="--multiprocessing_distributed true ${asr_args}"

for seed in ${seeds}; do
    ./hat_asr.sh \
        --asr_task espnet \
        --train_set train_clean_100 \
        --valid_set dev \
        --test_sets "dev_clean dev_other test_clean test_other" \
        --speed_perturb_factors "0.9 1.0 1.1" \
        --max_wav_duration 30 \
        --nbpe 5000 \
        --nj 8 \
        --ngpu "${ngpu}" \
        --gpu_inference "${gpu_inference}" \
        --asr_config conf/train_espnet_ctc_att.yaml \
        --asr_tag "train_espnet_ctc_att_bpe5000_seed${seed}" \
        --asr_args "--seed ${seed} ${asr_args}" \
        --inference_configs conf/decode_espnet_ctc_att.yaml \
        --inference_batch_size 1 \
        --inference_nj 1 \
        "${args[@]}"
done
