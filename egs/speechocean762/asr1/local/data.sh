#!/usr/bin/env bash
# speechocean762 -> data/{train,dev,test}: absolute audio paths, dev = 10 held-out training speakers.
# The corpus location comes from db.sh (SPEECHOCEAN762).
set -euo pipefail
. ./db.sh

dev_speakers=10
while [ $# -gt 0 ]; do
    case "$1" in
        --dev_speakers) dev_speakers=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --dev_speakers N)" >&2; exit 2 ;;
    esac
done

if [ ! -f "${SPEECHOCEAN762}/train/wav.scp" ] || [ ! -f "${SPEECHOCEAN762}/test/wav.scp" ]; then
    echo "$0: speechocean762 not found at SPEECHOCEAN762='${SPEECHOCEAN762}'" >&2
    echo "  (expected train/wav.scp and test/wav.scp; set SPEECHOCEAN762 or edit db.sh)" >&2
    exit 1
fi
if [ -f data/test/wav.scp ] && [ -f data/dev/wav.scp ] && [ -f data/train/wav.scp ]; then
    echo "$0: data/{train,dev,test} exist; nothing to do"
    exit 0
fi

export LC_ALL=C
copy_set() {  # copy_set <corpus subset> <dest> [speaker filter file] [keep|drop]
    local src=${SPEECHOCEAN762}/$1 dst=data/$2
    mkdir -p "${dst}"
    awk -v root="${SPEECHOCEAN762}" '{ path = $2; if (path !~ /^\//) path = root "/" path; print $1, path }' \
        "${src}/wav.scp" > "${dst}/wav.scp.all"
    sed 's/\t/ /' "${src}/text" > "${dst}/text.all"
    cp "${src}/utt2spk" "${dst}/utt2spk.all"
    if [ $# -ge 4 ]; then
        if [ "$4" = keep ]; then
            awk 'NR == FNR { s[$1]; next } ($2 in s) { print $1 }' "$3" "${dst}/utt2spk.all" > "${dst}/utts"
        else
            awk 'NR == FNR { s[$1]; next } !($2 in s) { print $1 }' "$3" "${dst}/utt2spk.all" > "${dst}/utts"
        fi
    else
        cut -d' ' -f1 "${dst}/utt2spk.all" > "${dst}/utts"
    fi
    for f in wav.scp text utt2spk; do
        awk 'NR == FNR { u[$1]; next } ($1 in u)' "${dst}/utts" "${dst}/${f}.all" | sort > "${dst}/${f}"
        rm "${dst}/${f}.all"
    done
    rm "${dst}/utts"
    awk '{ s[$2] = s[$2] " " $1 } END { for (k in s) print k s[k] }' "${dst}/utt2spk" | sort > "${dst}/spk2utt"
    echo "$0: ${dst}: $(wc -l < "${dst}/wav.scp") utterances, $(wc -l < "${dst}/spk2utt") speakers"
}

mkdir -p data
cut -d' ' -f1 "${SPEECHOCEAN762}/train/spk2utt" | sort | head -n "${dev_speakers}" > data/dev_speakers
copy_set train train data/dev_speakers drop
copy_set train dev data/dev_speakers keep
copy_set test test
