#!/usr/bin/env bash
# Mini LibriSpeech -> data/{train,dev,test}: train = 26 train-clean-5 speakers, dev = speakers
# 1970 and 3242, test = all of dev-clean-2 (local/data_prep.py). The corpus location comes from
# db.sh (MINI_LIBRISPEECH): the Opus copy in ../shared or the original FLAC release. With
# --download true and no corpus at MINI_LIBRISPEECH, the official OpenSLR 31 archives are
# fetched into downloads/ (sha256 verified, skipped when already extracted) and used instead.
set -euo pipefail
. ./db.sh

download=false
data_url=https://www.openslr.org/resources/31
# sha256 of the OpenSLR 31 archives (their published md5sum.txt gives the md5 only:
# train-clean-5 5df7d4e78065366204ca6845bb08f490, dev-clean-2 6d7ab67ac6a1d2c993d050e16d61080d).
data_sha256_train=47805806c8b15f7549f3c51bd6b7da72ec0128a34d32830c8014a88658c0292d
data_sha256_dev=176ec501490eced2d6c1f89f4f0ddc7dfe799e649e5322f8ba49fe3ff50c8012
while [ $# -gt 0 ]; do
    case "$1" in
        --download) download=$2; shift 2 ;;
        --data_url) data_url=$2; shift 2 ;;
        --data_sha256_train) data_sha256_train=$2; shift 2 ;;
        --data_sha256_dev) data_sha256_dev=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --download true|false, --data_url BASE_URL, --data_sha256_train HEX, --data_sha256_dev HEX)" >&2; exit 2 ;;
    esac
done

. scripts/librispeech_corpus.sh
librispeech_corpus MINI_LIBRISPEECH "${download}" "${data_url}" \
    "train-clean-5=${data_sha256_train}" "dev-clean-2=${data_sha256_dev}"
python3 local/data_prep.py --corpus_root "${MINI_LIBRISPEECH}" --out data
