#!/usr/bin/env bash
# mini_librispeech (5 h of read English, OpenSLR 31): HAT+IAM against vanilla HAT and ESPnet's
# hybrid CTC/attention model, all trained and decoded by the same stages with the same encoder,
# features, SpecAugment, BPE 300, batches, epochs and seeds, then compared. train = 26
# train-clean-5 speakers, dev = speakers 1970 and 3242, test = dev-clean-2.
#
#   ./run.sh [--systems "train_hat_iam train_hat train_espnet_ctc_att"] [--seeds "2024 1 2"]
#            [--compare only] [hat_asr.sh options]
#
# Options: scripts/run_systems.sh (the driver every recipe shares), then hat_asr.sh's.
set -euo pipefail

exec scripts/run_systems.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --nbpe 300 \
    --systems "train_hat_iam train_hat train_espnet_ctc_att" \
    --decode_configs "conf/decode_greedy.yaml conf/decode_beam_sym4.yaml conf/decode_iam.yaml conf/decode_hat.yaml conf/decode_dual_0.6.yaml conf/decode_dual_0.8.yaml conf/decode_dual_0.9.yaml conf/decode_dual_0.95.yaml conf/decode_dual_0.99.yaml conf/decode_espnet_maes.yaml conf/decode_espnet_alsd.yaml" \
    --espnet_searches "maes alsd" \
    --espnet_search_systems train_hat_iam \
    --criteria "train_espnet_*=valid.loss" \
    --espnet_decode_configs "conf/decode_espnet_ctc_att.yaml conf/decode_espnet_ctc_att_ctc_weight_1.0.yaml" \
    --pairs "train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att_conv2d@espnet_ctc_att train_hat_iam:train_espnet_ctc_att_conv2d@espnet_ctc_att_ctc_weight_1.0 train_hat_iam:train_espnet_ctc_att_conv2d_30ep@espnet_ctc_att_ctc_weight_1.0 train_hat_iam:train_espnet_ctc_att_60ep@espnet_ctc_att train_hat_iam:train_espnet_ctc_att_60ep@espnet_ctc_att_ctc_weight_1.0 train_hat_iam:train_espnet_ctc_att_30ep@espnet_ctc_att_ctc_weight_0.5 train_hat_iam@dual_0.95:train_hat_iam@beam_sym4 train_hat_iam_30ep:train_espnet_ctc_att_conv2d_30ep@espnet_ctc_att_ctc_weight_1.0 train_hat_iam_30ep:train_hat_iam train_hat_iam_30ep:train_hat_30ep train_hat_30ep:train_hat" \
    --title "mini_librispeech: HAT+IAM against vanilla HAT and ESPnet CTC/attention" \
    --note "published anchor on dev-clean-2 (test): Kaldi chain TDNN tdnn_1j, 10.78 % WER with its small trigram LM, 7.43 % rescored with the large LM" \
    "$@"
