#!/usr/bin/env bash
# Creates tools/venv with the pinned stack and installs espnet_hatiam into it (editable).
# Idempotent: when the venv already matches tools/requirements.txt and setup.py, it returns at once.
# Usage: tools/install.sh [--python PYTHON]
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_dir=$(dirname "${tools_dir}")
venv="${tools_dir}/venv"
python=python3

while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        *) echo "$0: unknown option '$1' (known: --python PYTHON)" >&2; exit 2 ;;
    esac
done

stamp="${venv}/.installed"
want=$(cat "${tools_dir}/requirements.txt" "${top_dir}/setup.py" "$0" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
    echo "tools/venv is up to date (${venv})"
    exit 0
fi

if [ ! -x "${venv}/bin/python" ]; then
    echo "Creating ${venv} with $(${python} --version)"
    "${python}" -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --quiet --upgrade "pip<26" wheel
# setuptools<74 is ESPnet's own pin; installing the requirements in one resolve keeps it.
"${venv}/bin/python" -m pip install --quiet -r "${tools_dir}/requirements.txt"
"${venv}/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "${top_dir}"
# ESPnet imports g2p_en, which downloads two NLTK resources at import time (refused here, and
# nothing may reach for the network at run time). No recipe uses a phoneme tokenizer: empty
# stand-ins in the venv's own NLTK folder (on nltk's default path) keep it offline.
"${venv}/bin/python" - "${venv}/nltk_data" <<'PY'
import pathlib, sys, zipfile
for name in ("taggers/averaged_perceptron_tagger_eng.zip", "corpora/cmudict.zip"):
    path = pathlib.Path(sys.argv[1]) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        zipfile.ZipFile(path, "w").close()
PY
# The searches' compiled loop, compiled once here and cached by Numba (the first decode then starts at once).
"${venv}/bin/python" -c "from espnet_hatiam.search.compiled import warm_up; warm_up()"
"${venv}/bin/python" -c "import torch, torchaudio, espnet2, espnet_hatiam; print('torch', torch.__version__, '| torchaudio', torchaudio.__version__, '| espnet_hatiam', espnet_hatiam.__version__)"
echo "${want}" > "${stamp}"
