#!/usr/bin/env bash
# speechocean762 (5.6 h of non-native read English): HAT+IAM against vanilla HAT and ESPnet's
# hybrid CTC/attention model, all trained and decoded by the same stages with the same encoder,
# features, BPE 300, batches, epochs and seeds, and the same initialisation: every system's encoder
# (the ESPnet baseline's included) starts from the synthetic-speech model of egs/synth_en, then
# compared (exp/RESULTS_compare.md; RESULTS.md with --update_results true).
#
#   ./run.sh [--systems "train_hat_iam train_hat train_espnet_ctc_att"] [--seeds "2024 1"]
#            [--compare only] [hat_asr.sh options]
#
# Options: scripts/run_systems.sh (the driver every recipe shares), then hat_asr.sh's.
set -euo pipefail

# 2.7 h of real training speech did not get a randomly initialised encoder off the all-blank CTC
# plateau within 7-10 CPU epochs (README.md); the encoder of egs/synth_en does. Stage 11 stops
# with the command that makes it when it is missing.
encoder_init=../../synth_en/asr1/exp/asr_train_demo_full_bpe300/valid.wer.best.pth

exec scripts/run_systems.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --nbpe 300 \
    --seeds "2024 1" \
    --init_param "${encoder_init}:encoder:encoder" \
    --init_param_made_by "(cd ../../synth_en/asr1 && ./run.sh --full --stop_stage 11)" \
    --systems "train_hat_iam train_hat train_espnet_ctc_att" \
    --espnet_searches "maes alsd" \
    --espnet_search_systems train_hat_iam \
    --criteria "train_espnet_*=valid.loss" \
    --espnet_decode_configs "conf/decode_espnet_ctc_att.yaml conf/decode_espnet_ctc_att_ctc_weight_0.5.yaml" \
    --pairs "train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att@espnet_ctc_att train_hat_iam:train_espnet_ctc_att@espnet_ctc_att_ctc_weight_0.5 train_hat_iam@dual_0.95:train_hat_iam@beam_sym4" \
    --title "speechocean762: HAT+IAM against vanilla HAT and ESPnet CTC/attention" \
    --note "every system's encoder starts from egs/synth_en's model (asr_train_demo_full_bpe300, valid.wer.best.pth)" \
    "$@"
