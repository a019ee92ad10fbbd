#!/usr/bin/env bash
# speechocean762 (5.6 h of non-native read English): HAT+IAM vs vanilla HAT vs RNN-T,
# decoded with no threshold, IAM-only, HAT-only and dual blank thresholding.
set -euo pipefail

./hat_asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets test \
    --nbpe 300 \
    --asr_config conf/train_hat_iam.yaml \
    --inference_configs "conf/decode_plain.yaml conf/decode_iam.yaml conf/decode_hat.yaml conf/decode_dual.yaml" \
    --inference_batch_size 8 \
    "$@"
