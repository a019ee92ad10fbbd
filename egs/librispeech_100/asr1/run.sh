#!/usr/bin/env bash
# librispeech_100 (the seed paper's corpus: train-clean-100, 100 h, with speed perturbation
# 0.9/1.0/1.1; dev = dev-clean + dev-other; tested on dev-clean, dev-other, test-clean,
# test-other), for GPU users: HAT+IAM against vanilla HAT and ESPnet's hybrid CTC/attention model
# with ESPnet's 12-block x 256 conformer sizes and BPE 5000, trained and decoded by the same stages,
# data, features, SpecAugment, batches, epochs and seeds, then compared.
#
#   ./run.sh [--systems "train_hat_iam train_hat train_espnet_ctc_att"] [--seeds 2024] [--ngpu 1]
#            [--gpu_inference true] [--asr_args "extra training options"] [hat_asr.sh options]
#
# --ngpu N trains (and collects stats) on N GPUs; N > 1 adds ESPnet's --multiprocessing_distributed
# true (one process per GPU, as ESPnet's asr.sh does). --gpu_inference true decodes on CUDA.
# Options: scripts/run_systems.sh (the driver every recipe shares), then hat_asr.sh's.
set -euo pipefail

exec scripts/run_systems.sh \
    --train_set train_clean_100 \
    --valid_set dev \
    --test_sets "dev_clean dev_other test_clean test_other" \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --max_wav_duration 30 \
    --nbpe 5000 \
    --nj 8 \
    --ngpu 1 \
    --gpu_inference true \
    --seeds 2024 \
    --systems "train_hat_iam train_hat train_espnet_ctc_att" \
    --espnet_searches "maes alsd" \
    --espnet_search_systems train_hat_iam \
    --criteria "train_espnet_*=valid.loss" \
    --pairs "train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att train_hat_iam@dual_0.95:train_hat_iam@beam_sym4" \
    --plot_set test_other \
    --title "librispeech_100: HAT+IAM against vanilla HAT and ESPnet CTC/attention" \
    --note "published, test-clean / test-other WER: ESPnet conformer transducer 6.9 / 18.1 %, ESPnet conformer CTC/attention 6.5 / 17.3 %, icefall pruned transducer (train-clean-100) 6.6 / 17.2 %" \
    "$@"
