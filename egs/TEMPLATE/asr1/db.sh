# Corpus locations (ESPnet's db.sh convention). Override with environment variables.
# The corpora shipped beside this checkout live in ../shared/corpora (never copied here).
_shared=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../../.." && pwd)/shared/corpora
AN4=${AN4:-${_shared}/an4}
MINI_LIBRISPEECH=${MINI_LIBRISPEECH:-${_shared}/mini_librispeech}
# LibriSpeech (OpenSLR 12) is not shipped: point LIBRISPEECH at a copy, or let egs/librispeech_100 download it
LIBRISPEECH=${LIBRISPEECH:-${_shared}/librispeech}
SPEECHOCEAN762=${SPEECHOCEAN762:-${_shared}/speechocean762}
unset _shared
