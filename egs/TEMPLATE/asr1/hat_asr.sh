#!/usr/bin/env bash
# Shared stage script of the espnet_hatiam recipes (ESPnet asr.sh conventions and numbering).
#
#   1  data preparation          local/data.sh -> data/<set>
#   2  speed perturbation        data/<train>_sp (only with --speed_perturb_factors)
#   3  format audio              dump/raw/<set>: 16-bit WAV at --fs
#   4  filter                    drop empty text, too short/long utterances (train and valid)
#   5  token list                sentencepiece (or char) tokens, <blank> first
#  10  collect stats             feature shapes and global mean/variance
#  11  training                  espnet_hatiam.bin.hat_asr_train (--asr_task espnet: espnet_hatiam.bin.espnet_asr_train, ESPnet's asr_train)
#  12  decoding                  every --inference_configs x --test_sets, --nj jobs, merged
#  13  scoring                   WER/CER, RTF, skip ratios -> exp/<asr>/RESULTS.md (and
#                                RESULTS.md with --update_results true); the decode record
#                                results/<asr>/ (hypotheses, per-utterance errors, config, learning
#                                curve, commit: small tracked files the comparison reads)
#  14  packing                   ESPnet model zip exp/<asr>/model.zip (espnet_model_zoo loads it)
#  15  Hugging Face model folder exp/<asr>/hf_model: the zip's files and a model card (not uploaded)
#
# --asr_task hat trains and decodes this project's HAT/RNN-T models; --asr_task espnet trains
# ESPnet's own ASR model (e.g. hybrid CTC/attention) on the same data, features and stats, and
# decodes it with ESPnet's Speech2Text: the baseline through the same stages.
#
# Every stage logs to its output folder and can be re-entered with --stage/--stop_stage.
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# ---- options (each can be given as --name value) ----
stage=1
stop_stage=100
nj=2                    # parallel jobs for formatting and decoding
inference_nj=           # decoding jobs (defaults to --nj)
python=python3
local_data_opts=""      # passed to local/data.sh
train_set=
valid_set=
test_sets=
fs=16000
min_wav_duration=0.1    # seconds
max_wav_duration=20     # seconds
speed_perturb_factors=""
token_type=bpe          # bpe or char
nbpe=300
bpemode=unigram
asr_task=hat            # hat (this project's models) or espnet (ESPnet's ASR task)
asr_config=
asr_tag=
asr_args=""             # extra arguments to training
init_param=""           # ESPnet's --init_param (path:src_key:dst_key) for training, checked by stage 11
init_param_made_by=""   # the command that makes --init_param's file, shown when it is missing
inference_configs=""    # space-separated yaml files; one decoding run each
inference_args=""       # extra arguments to every decoding run
inference_model=valid.wer.ave.pth  # average of the keep_nbest_models best checkpoints (ESPnet's practice)
inference_batch_size=1
num_threads=1           # torch threads per decoding job
ngpu=0                  # GPUs for collect stats and training (ESPnet's --ngpu)
gpu_inference=false     # decode on CUDA
update_results=false    # stage 13 also refreshes the tracked RESULTS.md of the recipe
record_dir=results      # stage 13 writes the decode record <record_dir>/asr_<tag> (commit it)
hf_repo=""              # model name in the stage 15 model card (the repository to push to); default <corpus>_<asr_tag>
lang=noinfo             # language code in the stage 15 model card
# ---- end of options

options() { sed -n '/^# ---- options/,/^# ---- end of options/p' "$0" | grep -E '^[a-z_]+='; }
usage() { sed -n '2,16p' "$0"; echo "Options (defaults):"; options | sed 's/^/  --/'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h) usage; exit 0 ;;
        --*)
            name="${1#--}"
            if ! options | grep -q -E "^${name}="; then
                die "unknown option '$1' (see --help)"
            fi
            [ $# -ge 2 ] || die "option '$1' needs a value"
            printf -v "${name}" '%s' "$2"
            shift 2 ;;
        *) die "unexpected argument '$1' (options are --name value)" ;;
    esac
done
inference_nj=${inference_nj:-${nj}}

[ -f path.sh ] && . ./path.sh
[ -f cmd.sh ] && . ./cmd.sh
: "${train_cmd:=run.pl}" "${decode_cmd:=${train_cmd}}"

[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
[ -n "${test_sets}" ] || die "--test_sets is required"
[ -n "${asr_config}" ] || die "--asr_config is required"
[ -f "${asr_config}" ] || die "--asr_config: no such file '${asr_config}'"
for config in ${inference_configs}; do
    [ -f "${config}" ] || die "--inference_configs: no such file '${config}'"
done
case "${token_type}" in bpe|char) ;; *) die "--token_type must be bpe or char, got '${token_type}'" ;; esac
case "${asr_task}" in
    hat) train_module=espnet_hatiam.bin.hat_asr_train; inference_module=espnet_hatiam.bin.hat_asr_inference ;;
    espnet) train_module=espnet_hatiam.bin.espnet_asr_train; inference_module=espnet_hatiam.bin.espnet_asr_inference ;;
    *) die "--asr_task must be hat or espnet, got '${asr_task}'" ;;
esac
case "${gpu_inference}" in true) device=cuda ;; false) device=cpu ;; *) die "--gpu_inference must be true or false" ;; esac

if [ -n "${speed_perturb_factors}" ]; then
    train_set_used="${train_set}_sp"
else
    train_set_used="${train_set}"
fi
if [ "${token_type}" = bpe ]; then
    token_dir=data/token_list/bpe_${bpemode}${nbpe}
    bpemodel=${token_dir}/bpe.model
    token_opts="--token_type bpe --bpemodel ${bpemodel}"
    token_tag=bpe${nbpe}
else
    token_dir=data/token_list/char
    bpemodel=none
    token_opts="--token_type char"
    token_tag=char
fi
token_list=${token_dir}/tokens.txt
asr_tag=${asr_tag:-$(basename "${asr_config}" .yaml)_${token_tag}}
stats_dir=exp/asr_stats_raw_${token_tag}
asr_exp=exp/asr_${asr_tag}

# Runs a stage only once per --stage/--stop_stage window; the body is the rest of the line.
in_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

require() {  # require <file> <what produces it>
    [ -e "$1" ] || die "missing '$1': run $2 first (--stage/--stop_stage)"
}

if in_stage 1; then
    log "Stage 1: data preparation: local/data.sh ${local_data_opts}"
    [ -x local/data.sh ] || die "local/data.sh not found or not executable in $(pwd)"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
fi

if in_stage 2 && [ -n "${speed_perturb_factors}" ]; then
    log "Stage 2: speed perturbation of data/${train_set}: ${speed_perturb_factors}"
    require "data/${train_set}/wav.scp" "stage 1"
    ${python} -m espnet_hatiam.bin.speed_perturb --src "data/${train_set}" --dst "data/${train_set_used}" \
        --factors ${speed_perturb_factors} --fs "${fs}" --nj "${nj}"
fi

if in_stage 3; then
    log "Stage 3: format audio to dump/raw (WAV, ${fs} Hz); stage 4 filters train and valid"
    for dset in ${test_sets}; do
        require "data/${dset}/wav.scp" "stage 1"
        ${python} -m espnet_hatiam.bin.format_data --src "data/${dset}" --dst "dump/raw/${dset}" --fs "${fs}" --nj "${nj}"
    done
fi

if in_stage 4; then
    log "Stage 4: format and filter train/valid (empty text, duration outside [${min_wav_duration}, ${max_wav_duration}] s)"
    for dset in "${train_set_used}" "${valid_set}"; do
        require "data/${dset}/wav.scp" "stage 1"
        ${python} -m espnet_hatiam.bin.format_data --src "data/${dset}" --dst "dump/raw/${dset}" --fs "${fs}" --nj "${nj}" \
            --min_duration "${min_wav_duration}" --max_duration "${max_wav_duration}"
    done
fi

if in_stage 5 && [ -f "${token_list}" ]; then
    log "Stage 5: ${token_list} is done; remove it to make it again"
elif in_stage 5; then
    log "Stage 5: token list (${token_type}) -> ${token_list}"
    require "dump/raw/${train_set_used}/text" "stage 4"
    mkdir -p "${token_dir}"
    if [ "${token_type}" = bpe ]; then
        ${python} -m espnet_hatiam.bin.spm_train --text "dump/raw/${train_set_used}/text" \
            --model_prefix "${token_dir}/bpe" --vocab_size "${nbpe}" --model_type "${bpemode}"
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.tokenize_text ${token_opts} -f 2- --input "dump/raw/${train_set_used}/text" \
        --output "${token_list}" --write_vocabulary true \
        --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
    log "$(wc -l < "${token_list}") tokens in ${token_list}"
fi

train_data_opts() {  # shapes from stage 10 and the dump dirs
    echo "--train_data_path_and_name_and_type dump/raw/${train_set_used}/wav.scp,speech,sound" \
         "--train_data_path_and_name_and_type dump/raw/${train_set_used}/text,text,text" \
         "--valid_data_path_and_name_and_type dump/raw/${valid_set}/wav.scp,speech,sound" \
         "--valid_data_path_and_name_and_type dump/raw/${valid_set}/text,text,text"
}

if in_stage 10 && [ -f "${stats_dir}/valid/text_shape.${token_type}" ]; then
    log "Stage 10: ${stats_dir} is done; remove it to collect again"
elif in_stage 10; then
    log "Stage 10: collect stats -> ${stats_dir} (log: ${stats_dir}/stats.log)"
    require "${token_list}" "stage 5"
    mkdir -p "${stats_dir}"
    # shellcheck disable=SC2046,SC2086
    ${train_cmd} "${stats_dir}/stats.log" \
        ${python} -m ${train_module} --collect_stats true --use_preprocessor true \
            --config "${asr_config}" --token_list "${token_list}" ${token_opts} \
            $(train_data_opts) \
            --train_shape_file "dump/raw/${train_set_used}/wav.scp" \
            --valid_shape_file "dump/raw/${valid_set}/wav.scp" \
            --output_dir "${stats_dir}" --ngpu "${ngpu}" --num_workers 1 ${asr_args}
    # ESPnet's convention: the vocabulary size is the last dimension of the text shape (batch bins).
    for part in train valid; do
        awk -v N="$(wc -l < "${token_list}")" '{ print $0 "," N }' "${stats_dir}/${part}/text_shape" \
            > "${stats_dir}/${part}/text_shape.${token_type}"
    done
fi

if in_stage 11; then
    log "Stage 11: training -> ${asr_exp} (log: ${asr_exp}/train.log; resumes from its last checkpoint)"
    init_opts=""
    if [ -n "${init_param}" ]; then
        [ -f "${init_param%%:*}" ] || die "--init_param: missing '${init_param%%:*}'; make it first: ${init_param_made_by:-see the README of this recipe}"
        init_opts="--init_param ${init_param}"
    fi
    require "${stats_dir}/train/feats_stats.npz" "stage 10"
    mkdir -p "${asr_exp}"
    # A resumed run keeps the earlier runs' logs as train.log.1, .2, ... (the learning curves read them all).
    if [ -f "${asr_exp}/train.log" ]; then
        n=1; while [ -e "${asr_exp}/train.log.${n}" ]; do n=$((n + 1)); done
        mv "${asr_exp}/train.log" "${asr_exp}/train.log.${n}"
    fi
    # shellcheck disable=SC2046,SC2086
    ${train_cmd} "${asr_exp}/train.log" \
        ${python} -m ${train_module} --use_preprocessor true --resume true \
            --config "${asr_config}" --token_list "${token_list}" ${token_opts} \
            --normalize global_mvn --normalize_conf "stats_file=${stats_dir}/train/feats_stats.npz" \
            $(train_data_opts) \
            --train_shape_file "${stats_dir}/train/speech_shape" \
            --train_shape_file "${stats_dir}/train/text_shape.${token_type}" \
            --valid_shape_file "${stats_dir}/valid/speech_shape" \
            --valid_shape_file "${stats_dir}/valid/text_shape.${token_type}" \
            --fold_length 80000 --fold_length 150 \
            --output_dir "${asr_exp}" --ngpu "${ngpu}" ${init_opts} ${asr_args} &
    pid=$!
    # One line per epoch; on a terminal also a bar over the epoch's batches with the time left.
    ${python} -m espnet_hatiam.bin.show_progress train --pid "${pid}" --log "${asr_exp}/train.log" || true
    wait "${pid}"
fi

decode_dir() { local name; name=$(basename "$1" .yaml); echo "${asr_exp}/decode_${name#decode_}_${inference_model%.pth}"; }

decode_jobs() {  # decode_jobs N...: stage 12's jobs N of ${dir} in parallel; fails when one fails
    local n status=0
    for n in "$@"; do
        # shellcheck disable=SC2086
        ${decode_cmd} JOB="${n}:${n}" "${dir}/logdir/decode.JOB.log" \
            ${python} -m ${inference_module} ${config_opt} --device "${device}" \
                --asr_train_config "${asr_exp}/config.yaml" --asr_model_file "${asr_exp}/${inference_model}" \
                --data_path_and_name_and_type "dump/raw/${dset}/wav.scp,speech,sound" \
                --key_file "${dir}/logdir/keys.JOB.scp" --batch_size "${inference_batch_size}" \
                --num_threads "${num_threads}" --output_dir "${dir}/logdir/output.JOB" ${inference_args} &
    done
    for n in "$@"; do wait -n || status=1; done
    return ${status}
}

if in_stage 12; then
    log "Stage 12: decoding ${test_sets} with: ${inference_configs:-default search}"
    require "${asr_exp}/${inference_model}" "stage 11"
    for config in ${inference_configs:-none}; do
        for dset in ${test_sets}; do
            dir=$(decode_dir "${config}")/${dset}
            if [ -f "${dir}/decode_stats.json" ]; then
                log "${dir} is done; remove it to decode again"
                continue
            fi
            mkdir -p "${dir}/logdir"
            split_scps=""
            for n in $(seq "${inference_nj}"); do split_scps+=" ${dir}/logdir/keys.${n}.scp"; done
            ${python} -m espnet_hatiam.bin.split_keys --scp "dump/raw/${dset}/wav.scp" --out ${split_scps}
            jobs=""  # a re-run decodes only the jobs that did not finish (same split: the keys are in order)
            for n in $(seq "${inference_nj}"); do
                [ -f "${dir}/logdir/output.${n}/decode_stats.json" ] || jobs+=" ${n}"
            done
            config_opt=""
            [ "${config}" != none ] && config_opt="--config ${config}"
            log "decoding ${dset} with ${config}: job(s)${jobs} of ${inference_nj} (logs: ${dir}/logdir/decode.*.log)"
            # shellcheck disable=SC2086
            decode_jobs ${jobs} &
            pid=$!
            ${python} -m espnet_hatiam.bin.show_progress decode --pid "${pid}" --logs "${dir}/logdir/decode.*.log" \
                --total "$(wc -l < "dump/raw/${dset}/wav.scp")" --desc "${dset} ${config##*/}" || true
            wait "${pid}" || die "decoding failed: see ${dir}/logdir/decode.*.log (finished jobs are kept; re-run stage 12)"
            ${python} -m espnet_hatiam.bin.merge_decode --dir "${dir}" --nj "${inference_nj}"
        done
    done
fi

if in_stage 13; then
    log "Stage 13: scoring -> ${asr_exp}/RESULTS.md"
    for config in ${inference_configs:-none}; do
        for dset in ${test_sets}; do
            dir=$(decode_dir "${config}")/${dset}
            require "${dir}/decode_stats.json" "stage 12"
            ${python} -m espnet_hatiam.bin.score --ref "dump/raw/${dset}/text" --dir "${dir}"
        done
    done
    images=${asr_exp}/images
    if [ "${asr_task}" = hat ]; then
        ${python} -m espnet_hatiam.bin.plot_results --exp "${asr_exp}" --test_set "${test_sets%% *}" \
            --out_dir "${images}"
    fi
    ${python} -m espnet_hatiam.bin.make_results --exp "${asr_exp}" --images "${images}" --out "${asr_exp}/RESULTS.md"
    ${python} -m espnet_hatiam.bin.write_record --exp "${asr_exp}" --ref_dir dump/raw \
        --out "${record_dir}/$(basename "${asr_exp}")"
    if [ "${update_results}" = true ]; then
        log "--update_results true: ${asr_exp}/RESULTS.md -> RESULTS.md, ${images} -> images/${asr_tag}"
        rm -rf "images/${asr_tag}"; mkdir -p images; cp -r "${images}" "images/${asr_tag}"
        sed "s#${images}/#images/${asr_tag}/#g" "${asr_exp}/RESULTS.md" > RESULTS.md
    fi
    cat "${asr_exp}/RESULTS.md"
fi

if in_stage 14; then
    log "Stage 14: packing -> ${asr_exp}/model.zip"
    require "${asr_exp}/${inference_model}" "stage 11"
    require "${asr_exp}/RESULTS.md" "stage 13"
    option="--option ${token_list}"
    [ "${token_type}" = bpe ] && option+=" --option ${bpemodel}"
    [ -d "${asr_exp}/images" ] && option+=" --option ${asr_exp}/images"
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.pack asr --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${inference_model}" ${option} \
        --option "${stats_dir}/train/feats_stats.npz" \
        --option "${asr_exp}/RESULTS.md" --outpath "${asr_exp}/model.zip"
fi

if in_stage 15; then
    # ESPnet's stage 15 unzips the packed model into a clone of the model repository, writes the
    # model card and pushes; this one makes the folder and stops before git.
    log "Stage 15: Hugging Face model folder -> ${asr_exp}/hf_model (model card: ${asr_exp}/hf_model/README.md)"
    require "${asr_exp}/model.zip" "stage 14"
    corpus=$(basename "$(dirname "$(pwd)")")  # egs/<corpus>/asr1
    ${python} -m espnet_hatiam.bin.hf_model_folder --packed "${asr_exp}/model.zip" \
        --results "${asr_exp}/RESULTS.md" --out "${asr_exp}/hf_model" \
        --name "${hf_repo:-${corpus}_${asr_tag}}" --corpus "${corpus}" --lang "${lang}"
fi

log "Successfully finished stages ${stage}-${stop_stage}"
