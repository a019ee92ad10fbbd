#!/usr/bin/env bash
# The embedded default recipe (`make demo`): synthesize an English corpus with espeak-ng,
# train a small conformer HAT+IAM, decode with no threshold, IAM-only, HAT-only and dual
# blank thresholding, and print RESULTS.md. About 20 minutes on 2 CPU cores.
set -euo pipefail

./hat_asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets test \
    --nbpe 300 \
    --asr_config conf/train_demo.yaml \
    --inference_configs "conf/decode_plain.yaml conf/decode_iam.yaml conf/decode_hat.yaml conf/decode_dual.yaml" \
    --inference_batch_size 8 \
    "$@"
