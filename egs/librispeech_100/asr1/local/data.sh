#!/usr/bin/env bash
# LibriSpeech 100 h -> data/{train_clean_100,dev,dev_clean,dev_other,test_clean,test_other}
# (local/data_prep.py, the reader of egs/mini_librispeech). The corpus location comes from db.sh
# (LIBRISPEECH: a folder with train-clean-100/, dev-clean/, dev-other/, test-clean/, test-other/
# or with LibriSpeech/ holding them). With --download true and no corpus there, the official
# OpenSLR 12 archives (6.3 GB + 4 x ~0.3 GB) are fetched into downloads/ (sha256 verified,
# skipped when already extracted) and used instead.
set -euo pipefail
. ./db.sh

download=false
data_url=https://www.openslr.org/resources/12
# sha256 of the OpenSLR 12 archives (as torchaudio.datasets.LIBRISPEECH pins them)
data_sha256_train_clean_100=d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2
data_sha256_dev_clean=76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3
data_sha256_dev_other=12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365
data_sha256_test_clean=39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23
data_sha256_test_other=d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29
known="--download true|false, --data_url BASE_URL, --data_sha256_{train_clean_100,dev_clean,dev_other,test_clean,test_other} HEX"
while [ $# -gt 0 ]; do
    case "$1" in
        --download) download=$2; shift 2 ;;
        --data_url) data_url=$2; shift 2 ;;
        --data_sha256_train_clean_100|--data_sha256_dev_clean|--data_sha256_dev_other|--data_sha256_test_clean|--data_sha256_test_other)
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: ${known})" >&2; exit 2 ;;
    esac
done

. scripts/librispeech_corpus.sh
librispeech_corpus LIBRISPEECH "${download}" "${data_url}" \
    "train-clean-100=${data_sha256_train_clean_100}" "dev-clean=${data_sha256_dev_clean}" \
    "dev-other=${data_sha256_dev_other}" "test-clean=${data_sha256_test_clean}" "test-other=${data_sha256_test_other}"
python3 local/data_prep.py --corpus_root "${LIBRISPEECH}" --out data
