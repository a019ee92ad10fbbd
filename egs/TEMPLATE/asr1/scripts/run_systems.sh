#!/usr/bin/env bash
# Every system x seed of a recipe through hat_asr.sh's stages, then the side-by-side comparison:
# the one driver behind each recipe's run.sh (an4, mini_librispeech, librispeech_100).
#
#   scripts/run_systems.sh --train_set S --valid_set S --test_sets "A B" --nbpe N --systems "train_x train_y"
#       [--seeds "2024 1 2"] [--decode_configs "conf/decode_a.yaml ..."] [--asr_args "training options"]
#       [--main_mode beam_sym4] [--compare true|false|only] [--pairs "a:b a@m1:a@m2"] [--plot_set SET]
#       [--title "..."] [--note "header line"]... [--update_results true]
#       [--espnet_searches "default alsd tsd nsc maes"] [--espnet_search_systems "train_x"]
#       [--criteria "train_espnet_*=valid.loss"] [--espnet_decode_configs "conf/decode_espnet_ctc_att.yaml ..."]
#       [hat_asr.sh options]
#
# A system is conf/<system>.yaml, trained as exp/asr_<system>_bpe<N>_seed<seed> with --seed <seed>
# and --asr_args; --ngpu N > 1 adds ESPnet's --multiprocessing_distributed true (as asr.sh does).
# train_espnet_* systems are ESPnet's own ASR task (espnet2.bin.asr_train), decoded with
# --espnet_decode_configs (conf/decode_espnet_ctc_att.yaml; the first is their main mode); the others
# with every decoding mode of conf/ (the thresholded modes left out for an RNN-T joint) or --decode_configs;
# ESPnet's BeamSearchTransducer only in the --espnet_searches algorithms and, if --espnet_search_systems is
# given, only on those systems (where ESPnet's one-utterance-at-a-time search would take hours a mode). Every model is decoded from the average of
# its best checkpoints (valid.wer.ave.pth) and, in the main mode, from its single best checkpoint (valid.wer.best.pth);
# --criteria "<system glob>=<criterion> ..." selects a matching system's checkpoints by another criterion of its
# config's best_model_criterion (e.g. valid.loss: ESPnet CTC/attention's validation "wer" is its attention
# decoder's teacher-forced output, 1.000 until that decoder has learned, and ESPnet keeps the earliest of tied epochs).
# Stage 13 writes each model's decode record results/asr_<system>_bpe<N>_seed<seed> (commit it): the
# comparison reads only the records, so models trained in different jobs or on other machines compare.
# When stage 13 has run (or with --compare only), scripts' comparison writes exp/RESULTS_compare.md,
# exp/images/{speed_accuracy,learning_curves}.png; --update_results true copies them to the tracked
# RESULTS.md and images/. Finished trainings and decodings are kept: a re-run does only what is missing.
set -euo pipefail

systems=""
seeds="2024 1 2"
decode_configs=""
asr_args=""
main_mode=beam_sym4
compare=true
pairs=""
plot_set=test
title="System comparison"
notes=()
update_results=false
espnet_searches="default alsd tsd nsc maes"
espnet_search_systems=""
criteria=""
espnet_decode_configs=conf/decode_espnet_ctc_att.yaml
train_set=""; valid_set=""; test_sets=""; nbpe=""
stage=1; stop_stage=100; ngpu=0
args=()
for arg in "$@"; do  # --help: the recipe's run.sh header, this driver's, then the stage script's options
    case "${arg}" in
        --help|-h)
            [ -f run.sh ] && sed -n '2,/^set -euo pipefail/p' run.sh | sed -n 's/^# \{0,1\}//p'
            echo; echo "Driver: $0"; sed -n '2,/^set -euo pipefail/p' "$0" | sed -n 's/^# \{0,1\}//p'
            echo; echo "Stage script: ./hat_asr.sh --help"; ./hat_asr.sh --help
            exit 0 ;;
    esac
done
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || { echo "$0: option '$1' needs a value" >&2; exit 2; }
    case "$1" in
        --systems) systems=$2 ;;
        --seeds) seeds=$2 ;;
        --decode_configs) decode_configs=$2 ;;
        --asr_args) asr_args=$2 ;;
        --main_mode) main_mode=$2 ;;
        --compare) compare=$2 ;;
        --pairs) pairs=$2 ;;
        --plot_set) plot_set=$2 ;;
        --title) title=$2 ;;
        --note) notes+=(--note "$2") ;;
        --update_results) update_results=$2 ;;
        --espnet_searches) espnet_searches=$2 ;;
        --espnet_search_systems) espnet_search_systems=$2 ;;
        --criteria) criteria=$2 ;;
        --espnet_decode_configs) espnet_decode_configs=$2 ;;
        --train_set) train_set=$2 ;;
        --valid_set) valid_set=$2 ;;
        --test_sets) test_sets=$2 ;;
        --nbpe) nbpe=$2 ;;
        --stage) stage=$2 ;;
        --stop_stage) stop_stage=$2 ;;
        --ngpu) ngpu=$2 ;;
        *) args+=("$1" "$2") ;;
    esac
    shift 2
done
for name in systems train_set valid_set test_sets nbpe; do
    [ -n "${!name}" ] || { echo "$0: --${name} is required" >&2; exit 2; }
done
case "${compare}" in true|false|only) ;; *) echo "$0: --compare must be true, false or only, got '${compare}'" >&2; exit 2 ;; esac
[ "${ngpu}" -gt 1 ] && asr_args="--multiprocessing_distributed true ${asr_args}"
data_opts=(--train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" --nbpe "${nbpe}" --ngpu "${ngpu}")

plain_configs="conf/decode_greedy.yaml conf/decode_beam_sym1.yaml conf/decode_beam_sym2.yaml conf/decode_beam_sym3.yaml conf/decode_beam_sym4.yaml"
for algo in default alsd tsd nsc maes; do plain_configs+=" conf/decode_espnet_${algo}.yaml"; done
threshold_configs="conf/decode_iam.yaml conf/decode_hat.yaml"
for theta in 0.6 0.8 0.9 0.95 0.99; do threshold_configs+=" conf/decode_dual_${theta}.yaml"; done

# What a system's models are decoded with: $1 system; prints "task configs batch_size main_config".
decoding_of() {
    local system=$1 configs="" config
    case "${system}" in
        train_espnet_*) echo "espnet ,${espnet_decode_configs// /,} 1 ${espnet_decode_configs%% *}"; return ;;
    esac
    for config in ${decode_configs:-${plain_configs} ${threshold_configs}}; do
        [ -f "${config}" ] || continue
        case "${config}" in  # ESPnet's search: its chosen algorithms, on its chosen systems
            conf/decode_espnet_*.yaml)
                local algo=${config#conf/decode_espnet_}; algo=${algo%.yaml}
                case " ${espnet_searches} " in *" ${algo} "*) ;; *) continue ;; esac
                [ -z "${espnet_search_systems}" ] || case " ${espnet_search_systems} " in
                    *" ${system} "*) ;; *) continue ;; esac ;;
        esac
        # Blank thresholding needs a HAT joint; an RNN-T joint has no blank factorisation (and no IAM).
        case " ${threshold_configs} " in
            *" ${config} "*) grep -q '^joint_type: *rnnt' "conf/${system}.yaml" && continue ;;
        esac
        configs+=",${config}"
    done
    echo "hat ${configs:-,-} 8 conf/decode_${main_mode}.yaml"
}

# The checkpoint criterion a system's models are selected by: $1 system; the first --criteria rule it matches.
criterion_of() {
    local rule rules
    read -ra rules <<< "${criteria}"  # no pathname expansion of the globs
    for rule in "${rules[@]}"; do
        # shellcheck disable=SC2254
        case "$1" in ${rule%%=*}) echo "${rule#*=}"; return ;; esac
    done
    echo valid.wer
}

if [ "${compare}" != only ]; then
    for system in ${systems}; do
        read -r task configs batch main_config < <(decoding_of "${system}")
        configs=${configs#,}
        [ "${configs}" != - ] || { echo "$0: no decoding config for ${system}: none of the modes is in conf/" >&2; exit 2; }
        criterion=$(criterion_of "${system}")
        for seed in ${seeds}; do
            common=(--asr_task "${task}" "${data_opts[@]}" --asr_config "conf/${system}.yaml"
                    --asr_tag "${system}_bpe${nbpe}_seed${seed}" --inference_batch_size "${batch}" --inference_nj 1)
            ./hat_asr.sh "${common[@]}" --asr_args "--seed ${seed} ${asr_args}" --inference_model "${criterion}.ave.pth" \
                --inference_configs "${configs//,/ }" --stage "${stage}" --stop_stage "${stop_stage}" "${args[@]}"
            if [ "${stage}" -le 13 ] && [ "${stop_stage}" -ge 12 ]; then  # the single best checkpoint, main mode
                ./hat_asr.sh "${common[@]}" --inference_model "${criterion}.best.pth" --inference_configs "${main_config}" \
                    --stage $((stage > 12 ? stage : 12)) --stop_stage $((stop_stage < 13 ? stop_stage : 13)) "${args[@]}"
            fi
        done
    done
fi
[ "${compare}" = false ] && exit 0
[ "${compare}" = only ] || [ "${stop_stage}" -ge 13 ] || exit 0

# shellcheck disable=SC1091
. ./path.sh
trained=$(ls -d results/asr_*_bpe"${nbpe}"_seed* 2>/dev/null | sed "s#results/asr_\(.*\)_bpe${nbpe}_seed.*#\1#" | sort -u | tr '\n' ' ')
[ -n "${trained}" ] || { echo "$0: no decode records results/asr_*_bpe${nbpe}_seed*: run stage 13 first" >&2; exit 2; }
present_pairs=""
for pair in ${pairs}; do  # only the pairs whose systems were recorded
    a=${pair%%:*}; b=${pair#*:}
    case " ${trained} " in *" ${a%%@*} "*) ;; *) continue ;; esac
    case " ${trained} " in *" ${b%%@*} "*) present_pairs+=" ${pair}" ;; esac
done
first_system=${systems%% *}
python -m espnet_hatiam.bin.compare_systems --records results/asr_*_bpe"${nbpe}"_seed* --sets "${test_sets}" \
    --models "valid.wer.ave valid.wer.best" --criteria "${criteria}" --main_mode "${main_mode}" --pairs "${present_pairs# }" \
    --tune_set "${valid_set}" \
    --plot exp/images/speed_accuracy.png --plot_system "${first_system}" --plot_set "${plot_set}" \
    --curves exp/images/learning_curves.png --title "${title}" \
    --setup_sets "${train_set} ${valid_set} ${test_sets}" "${notes[@]}" \
    --note "main mode: \`${main_mode}\`; RTF and search seconds come from the recipe's decoding jobs (1 thread each; --inference_nj of them at once), so they compare across rows only when nothing else ran beside them; speed ratios: bench/decode_speed.py (every row in one process)" \
    --out exp/RESULTS_compare.md
if [ "${update_results}" = true ]; then
    mkdir -p images
    cp exp/images/speed_accuracy.png exp/images/learning_curves.png images/
    cp exp/RESULTS_compare.md RESULTS.md  # its figure links, images/..., hold in both places
    echo "$0: RESULTS.md and images/ refreshed"
fi
