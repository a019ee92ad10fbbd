#!/usr/bin/env bash
# speechocean762 (5.6 h of non-native read English): conformer HAT+IAM whose encoder starts from
# the synthetic-speech demo model, decoded with ESPnet's search, no threshold, IAM-only, HAT-only
# and dual blank thresholding.
set -euo pipefail

# 2.7 h of real training speech did not get a randomly initialised encoder off the all-blank CTC
# plateau within 7-10 CPU epochs (README.md); the encoder of egs/synth_en does. Stage 11 stops
# with the command that makes it when it is missing.
encoder_init=../../synth_en/asr1/exp/asr_train_demo_full_bpe300/valid.wer.best.pth

./hat_asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets test \
    --nbpe 300 \
    --asr_config conf/train_hat_iam.yaml \
    --init_param "${encoder_init}:encoder:encoder" \
    --init_param_made_by "(cd ../../synth_en/asr1 && ./run.sh --full --stop_stage 11)" \
    --inference_model valid.wer.best.pth \
    --inference_configs "conf/decode_espnet.yaml conf/decode_plain.yaml conf/decode_iam.yaml conf/decode_hat.yaml conf/decode_dual.yaml" \
    --inference_batch_size 8 \
    "$@"
