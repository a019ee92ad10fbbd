#!/usr/bin/env bash
# an4 (ESPnet's smallest real recipe): HAT+IAM against vanilla HAT, RNN-T and ESPnet's hybrid
# CTC/attention model, all trained and decoded by the same stages with the same encoder, features,
# BPE 30, batches, epochs and seeds, then compared (exp/RESULTS_compare.md; RESULTS.md with
# --update_results true).
#
#   ./run.sh [--systems "train_hat_iam train_hat train_rnnt train_espnet_ctc_att"] [--seeds "2024 1 2"]
#            [--decode_configs "conf/decode_beam_sym2.yaml ..."] [--compare only] [hat_asr.sh options]
#
# Options: scripts/run_systems.sh (the driver every recipe shares), then hat_asr.sh's.
set -euo pipefail

exec scripts/run_systems.sh \
    --train_set train_nodev \
    --valid_set train_dev \
    --test_sets "train_dev test" \
    --nbpe 30 \
    --systems "train_hat_iam train_hat train_rnnt train_espnet_ctc_att" \
    --pairs "train_hat_iam:train_hat train_hat_iam:train_rnnt train_hat_iam:train_espnet_ctc_att train_hat_iam@dual_0.95:train_hat_iam@beam_sym4 train_hat_iam@dual_0.8:train_hat_iam@beam_sym4 train_hat_iam@greedy:train_hat_iam@beam_sym4" \
    --title "an4: HAT+IAM against vanilla HAT, RNN-T and ESPnet CTC/attention" \
    --note "published (ESPnet egs2/an4, 12-block transformer, speed perturbation, 200 GPU epochs, beam 10): 7.6 % test, 12.9 % train_dev WER" \
    "$@"
