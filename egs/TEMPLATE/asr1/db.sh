# Corpus locations (ESPnet's db.sh convention). Override with environment variables.
# The corpora shipped beside this checkout live in ../shared/corpora (never copied here).
_shared=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../../.." && pwd)/shared/corpora
SPEECHOCEAN762=${SPEECHOCEAN762:-${_shared}/speechocean762}
FSDD=${FSDD:-${_shared}/fsdd}
unset _shared
