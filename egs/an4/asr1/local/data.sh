#!/usr/bin/env bash
# an4 -> data/{train_nodev,train_dev,test} (ESPnet's split). The corpus location comes from
# db.sh (AN4): the Opus copy in ../shared or the original NIST SPHERE release. With
# --download true and no corpus at AN4, the official archive is fetched into downloads/
# (checksum verified, skipped when already extracted) and used instead.
set -euo pipefail
. ./db.sh

download=false
data_url=http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz
data_sha256=a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12
while [ $# -gt 0 ]; do
    case "$1" in
        --download) download=$2; shift 2 ;;
        --data_url) data_url=$2; shift 2 ;;
        --data_sha256) data_sha256=$2; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --download true|false, --data_url URL, --data_sha256 HEX)" >&2; exit 2 ;;
    esac
done

if [ ! -f "${AN4}/etc/an4_train.transcription" ]; then
    if [ "${download}" != true ]; then
        echo "$0: an4 not found at AN4='${AN4}' (expected etc/an4_train.transcription);" >&2
        echo "  set AN4 (db.sh) or run with --local_data_opts '--download true'" >&2
        exit 1
    fi
    python3 -m espnet_hatiam.data.download --url "${data_url}" --sha256 "${data_sha256}" \
        --dest downloads --check an4/etc/an4_train.transcription
    AN4=$(pwd)/downloads/an4
fi
python3 local/data_prep.py --an4_root "${AN4}" --out data
