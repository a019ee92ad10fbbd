#!/usr/bin/env bash
# librispeech_100 (the seed paper's corpus: train-clean-100, 100 h, with speed perturbation
# 0.9/1.0/1.1; dev = dev-clean + dev-other; tested on dev-clean, dev-other, test-clean,
# test-other), for GPU users: HAT+IAM against vanilla HAT with ESPnet's 12-block x 256 conformer
# sizes and BPE 5000, trained and decoded by the same stages, data, features, SpecAugment,
# batches, epochs and seeds; run_espnet.sh adds ESPnet's hybrid CTC/attention model;
# local/compare.sh puts them side by side.
#
#   ./run.sh [--systems "train_hat_iam train_hat"] [--seeds 2024] [--ngpu 1] [--gpu_inference true]
#            [--asr_args "extra training options"] [hat_asr.sh options]
#
# --ngpu N trains (and collects stats) on N GPUs; N > 1 adds ESPnet's --multiprocessing_distributed
# true (one process per GPU, as ESPnet's asr.sh does). --gpu_inference true decodes on CUDA.
set -euo pipefail

systems="train_hat_iam train_hat"
seeds="2024"
ngpu=1
gpu_inference=true
asr_args=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --systems) systems=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --ngpu) ngpu=$2; shift 2 ;;
        --gpu_inference) gpu_inference=$2; shift 2 ;;
        --asr_args) asr_args=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
[ "${ngpu}" -gt 1 ] && asr_args="--multiprocessing_distributed true ${asr_args}"

decode_configs="conf/decode_greedy.yaml conf/decode_beam_sym1.yaml conf/decode_beam_sym2.yaml conf/decode_beam_sym3.yaml conf/decode_iam.yaml conf/decode_hat.yaml"
for theta in 0.6 0.8 0.9 0.95 0.99; do decode_configs+=" conf/decode_dual_${theta}.yaml"; done
for algo in default alsd tsd nsc maes; do decode_configs+=" conf/decode_espnet_${algo}.yaml"; done

for system in ${systems}; do
    for seed in ${seeds}; do
        ./hat_asr.sh \
            --train_set train_clean_100 \
            --valid_set dev \
            --test_sets "dev_clean dev_other test_clean test_other" \
            --speed_perturb_factors "0.9 1.0 1.1" \
            --max_wav_duration 30 \
            --nbpe 5000 \
            --nj 8 \
            --ngpu "${ngpu}" \
            --gpu_inference "${gpu_inference}" \
            --asr_config "conf/${system}.yaml" \
            --asr_tag "${system}_bpe5000_seed${seed}" \
            --asr_args "--seed ${seed} ${asr_args}" \
            --inference_configs "${decode_configs}" \
            --inference_batch_size 8 \
            --inference_nj 1 \
            "${args[@]}"
    done
done
