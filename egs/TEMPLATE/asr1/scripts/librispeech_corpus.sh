# shellcheck shell=bash
# Sourced by the local/data.sh of the LibriSpeech-layout recipes (egs/mini_librispeech,
# egs/librispeech_100): where their corpus is, downloaded when asked.
#
#   . scripts/librispeech_corpus.sh
#   librispeech_corpus VARIABLE DOWNLOAD BASE_URL PART=SHA256 [PART=SHA256 ...]
#
# Leaves VARIABLE (the db.sh variable, e.g. MINI_LIBRISPEECH) naming a folder that holds every PART,
# as <folder>/PART or <folder>/LibriSpeech/PART (the rule of espnet_hatiam.data.librispeech.find_set).
# When a part is missing there: with DOWNLOAD other than "true", one line naming VARIABLE and the
# download option, exit 1; with "true", BASE_URL/PART.tar.gz of every part is fetched into
# downloads/ (espnet_hatiam.data.download: sha256 verified unless empty, which is warned about
# loudly; skipped when downloads/PART.done marks it extracted) and VARIABLE becomes
# $(pwd)/downloads/LibriSpeech.

librispeech_corpus() {
    local variable=$1 download=$2 url=$3
    shift 3
    local root=${!variable} entry part sha256 missing=()
    for entry in "$@"; do
        part=${entry%%=*}
        [ -d "${root}/${part}" ] || [ -d "${root}/LibriSpeech/${part}" ] || missing+=("${part}")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "${download}" != true ]; then
        echo "$0: no ${missing[*]/%//} at ${variable}='${root}' (nor under LibriSpeech/ there): set ${variable} (db.sh) or run with --local_data_opts '--download true'" >&2
        exit 1
    fi
    for entry in "$@"; do
        part=${entry%%=*}
        sha256=${entry#*=}
        if [ -z "${sha256}" ]; then
            echo "$0: WARNING: ************************************************************" >&2
            echo "$0: WARNING: no sha256 for ${part}.tar.gz: the archive is NOT verified" >&2
            echo "$0: WARNING: ************************************************************" >&2
        fi
        # downloads/<part>.done marks a finished extraction (an interrupted one is redone from the kept archive)
        python3 -m espnet_hatiam.data.download --url "${url}/${part}.tar.gz" ${sha256:+--sha256 "${sha256}"} \
            --dest downloads --check "${part}.done"
        touch "downloads/${part}.done"
    done
    printf -v "${variable}" '%s' "$(pwd)/downloads/LibriSpeech"
}
