# Puts the project's tools/venv on PATH (ESPnet's path.sh convention).
_repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
if [ ! -x "${_repo_root}/tools/venv/bin/python" ]; then
    echo "path.sh: ${_repo_root}/tools/venv is missing: run 'make install' (tools/install.sh) first" >&2
    return 1
fi
. "${_repo_root}/tools/activate.sh"
export PYTHONUNBUFFERED=1
unset _repo_root
