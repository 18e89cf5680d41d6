#!/usr/bin/env bash
# Fetches NanumGothic (SIL Open Font License), a font with Hangul for the eval plots, without a system
# install: from the PyPI wheel koreanize-matplotlib 0.1.1, which ships it. Both the wheel and the font
# are checked against pinned SHA-256 hashes. Usage: scripts/fetch-font.sh [DEST]
# DEST defaults to .cache/fonts/NanumGothic.ttf (where `cargo xtask all` and the tests look).
set -euo pipefail
dest=${1:-"$(cd "$(dirname "$0")/.." && pwd)/.cache/fonts/NanumGothic.ttf"}
font_sha=48a28e97b34fc8e5b157657633670cd1b7de126cfc414da65ce9c3d5bc8be733
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$font_sha" ]; then
  echo "NanumGothic already at $dest"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "koreanize-matplotlib==0.1.1 --hash=sha256:4f563db1a75d9eb6bdb667a435adf8a5daf7e41504486f1b0fb1c20e4bfed4ca" >"$tmp/req.txt"
python3 -m pip download --quiet --no-deps --require-hashes --dest "$tmp" -r "$tmp/req.txt"
python3 - "$tmp" "$dest" "$font_sha" <<'PY'
import glob, hashlib, os, sys, zipfile
tmp, dest, want = sys.argv[1:]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    font = z.read("koreanize_matplotlib/fonts/NanumGothic.ttf")
got = hashlib.sha256(font).hexdigest()
if got != want:
    sys.exit(f"NanumGothic.ttf in {os.path.basename(whl)} has SHA-256 {got}, expected {want}")
os.makedirs(os.path.dirname(dest), exist_ok=True)
part = dest + ".part"
with open(part, "wb") as f:
    f.write(font)
os.replace(part, dest)
PY
echo "NanumGothic -> $dest"
