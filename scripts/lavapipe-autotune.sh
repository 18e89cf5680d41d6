#!/usr/bin/env bash
# Records cubecl's autotune results for the tests' GPU code path on Mesa's lavapipe into
# crates/simcse-testkit/autotune, the seed of every test run's autotune cache
# (simcse_testkit::autotune_cache). Run it when a wgpu test's shapes change: `.ci/run` says how
# many shapes the seed lacked. Needs a Vulkan driver (apt-get install mesa-vulkan-drivers).
set -euo pipefail
cd "$(dirname "$0")/.."
seed=crates/simcse-testkit/autotune
rm -rf target/cubecl-autotune "$seed"
# Every test of the GPU code path has "wgpu" in its name.
SIMCSE_REQUIRE_WGPU=1 cargo test --workspace "$@" -- wgpu
# Only the choice is kept: the per-candidate timings are this machine's noise.
python3 - target/cubecl-autotune "$seed" <<'PY'
import json, pathlib, sys
src, dst = map(pathlib.Path, sys.argv[1:])
for f in sorted(src.rglob("*.json.log")):
    entries = {}
    for line in f.read_text().splitlines():
        e = json.loads(line)
        e["value"]["results"] = []
        entries[json.dumps(e["key"], sort_keys=True)] = e
    out = dst / f.relative_to(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(entries[k], separators=(",", ":")) + "\n" for k in sorted(entries)))
    print(f"{out}: {len(entries)} shapes")
PY
