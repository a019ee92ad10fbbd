#!/usr/bin/env bash
# speechocean762 (5.6 h of non-native read English): conformer HAT+IAM whose encoder starts from
# the synthetic-speech demo model, decoded with ESPnet's search, no threshold, IAM-only, HAT-only
# and dual blank thresholding.
set -euo pipefail

# 2.7 h of real training speech did not get a randomly initialised encoder off the all-blank CTC
# plateau within 7-10 CPU epochs (README.md); the encoder of egs/synth_en (espeak-ng speech made
# on the spot, about 18 min to train) does. Trained here first when stage 11 runs without it.
encoder_init=../../synth_en/asr1/exp/asr_train_demo_bpe300/valid.wer.best.pth
stage=1 stop_stage=100 previous=""
for arg in "$@"; do
    case "${previous}" in --stage) stage=${arg} ;; --stop_stage) stop_stage=${arg} ;; esac
    case "${arg}" in --help|-h) stop_stage=0 ;; esac
    previous=${arg}
done
if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ] && [ ! -f "${encoder_init}" ]; then
    (cd ../../synth_en/asr1 && ./run.sh --stop_stage 11)
fi

./hat_asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets test \
    --nbpe 300 \
    --asr_config conf/train_hat_iam.yaml \
    --asr_args "--init_param ${encoder_init}:encoder:encoder" \
    --inference_configs "conf/decode_espnet.yaml conf/decode_plain.yaml conf/decode_iam.yaml conf/decode_hat.yaml conf/decode_dual.yaml" \
    --inference_batch_size 8 \
    "$@"
