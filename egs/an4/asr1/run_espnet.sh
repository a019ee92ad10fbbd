#!/usr/bin/env bash
# an4: ESPnet's hybrid CTC/attention model alone (espnet2.bin.asr_train / Speech2Text, joint
# CTC/attention beam search), through the same stages, data, features, BPE and seeds as run.sh.
#
#   ./run_espnet.sh [--seeds "2024 1 2"] [run.sh options]
exec ./run.sh --systems train_espnet_ctc_att --compare false "$@"
