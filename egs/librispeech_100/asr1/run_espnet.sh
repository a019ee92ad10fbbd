#!/usr/bin/env bash
# librispeech_100: ESPnet's hybrid CTC/attention conformer alone (espnet2.bin.asr_train /
# Speech2Text, joint CTC/attention beam search, beam 20), through the same stages, data, features,
# SpecAugment, BPE and seeds as run.sh; ESPnet's egs2/librispeech_100 conformer recipe.
#
#   ./run_espnet.sh [--seeds 2024] [run.sh options]
exec ./run.sh --systems train_espnet_ctc_att --compare false "$@"
