#!/usr/bin/env bash
# The embedded default recipe (`make demo`): synthesize English speech with espeak-ng, train the
# recipes' conformer HAT+IAM, decode with no threshold, IAM-only, HAT-only and dual blank
# thresholding, score, and print RESULTS.md and the wall time.
#
#   ./run.sh            quick demo: 1,000 short training utterances (0.6 h), 6 epochs, 100 test
#                       utterances of unseen voices; about 10 minutes on 2 CPU cores
#   ./run.sh --full     the larger demo: 3,000 utterances (2.2 h), 5 epochs, 300 test utterances;
#                       about 35 minutes (data/*_full, exp/asr_train_demo_full_bpe300)
#   ./run.sh [--full] [hat_asr.sh options]
set -euo pipefail

full=false
if [ "${1:-}" = --full ]; then full=true; shift; fi

if ${full}; then
    sets=(--train_set train_full --valid_set dev_full --test_sets test_full)
    options=(--nbpe 300 --asr_config conf/train_demo_full.yaml
             --local_data_opts "--suffix _full --wav_dir downloads/wav_full")
else
    sets=(--train_set train --valid_set dev --test_sets test)
    options=(--nbpe 100 --asr_config conf/train_demo.yaml
             --local_data_opts "--num_train 1000 --num_dev 100 --num_test 100 --max_words 8 --min_word_count 10")
fi
./hat_asr.sh "${sets[@]}" "${options[@]}" \
    --inference_configs "conf/decode_plain.yaml conf/decode_iam.yaml conf/decode_hat.yaml conf/decode_dual.yaml" \
    --inference_batch_size 8 \
    "$@"
echo "$0: done in $((SECONDS / 60)) min $((SECONDS % 60)) s ($(nproc) CPU cores)"
