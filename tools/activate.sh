# Source me: puts tools/venv on PATH.  . tools/activate.sh
_hatiam_tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "${_hatiam_tools}/venv/bin/activate"
unset _hatiam_tools
