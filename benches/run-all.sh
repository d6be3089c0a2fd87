#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md in sequence, as written there, and keeps each output
# under <cargo target dir>/bench-results/. About 9 minutes on 2 cores once built; measure on a
# quiet machine (the load average is printed before each step).
#
#   bash benches/run-all.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
out="$target_dir/bench-results"
mkdir -p "$out"

step() {
    echo
    echo "== $1 (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
}

cargo build --quiet --release -p wechat-benches -p wechat-loadtest --bins

step "criterion micro-benchmarks"
cargo bench -p wechat-benches -- --warm-up-time 1 --measurement-time 3 2>&1 | tee "$out/criterion.txt"

step "load: layer against bare axum and actix-web, JS-SDK and notify routes"
cargo run --quiet --release -p wechat-loadtest --bin load 2>&1 | tee "$out/load.txt"

step "load, paired mode: each layer against its bare app, side by side in alternating slices"
cargo run --quiet --release -p wechat-loadtest --bin load -- --paired 2>&1 | tee "$out/load-paired.txt"

step "memory of the session cookie cache and the token store"
cargo run --quiet --release -p wechat-loadtest --bin cache-memory 2>&1 | tee "$out/cache-memory.txt"

step "stampede: 10,000 callers on a cold and an expired token"
cargo run --quiet --release -p wechat-loadtest --bin stampede 2>&1 | tee "$out/stampede.txt"

step "side-by-side with wechatpy"
bash "$here/wechatpy/compare.sh" 2>&1 | tee "$out/wechatpy.txt"

step "side-by-side with the Pay v3 SDKs (wechatpayv3, wechatpay-node-v3, wechatpay-axios-plugin)"
bash "$here/v3-sdks/compare.sh" 2>&1 | tee "$out/v3-sdks.txt"

echo
echo "outputs in $out"
