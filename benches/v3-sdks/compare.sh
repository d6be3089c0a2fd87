#!/usr/bin/env bash
# The side-by-side of wechat-core's WeChat Pay API v3 with the v3 SDKs runnable here
# (wechatpayv3 on Python; wechatpay-node-v3 and wechatpay-axios-plugin on Node.js), in one
# command: installs the SDKs (setup.sh), builds the Rust side (the pay-ops binary, release) and
# runs compare.py, which checks that every SDK gives the same signatures and decrypted
# notification on the same inputs, hands each the notification probes, and prints ops/s, the
# ratios, and wechat-core beside its bare ring baselines, as markdown.
#
#   bash benches/v3-sdks/compare.sh                          # 2 s per operation and side
#   bash benches/v3-sdks/compare.sh --seconds 5 --repeat 10 --rounds 200
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
bash "$here/setup.sh"
cargo build --quiet --release -p wechat-benches --bin pay-ops
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$here/.venv/bin/python" "$here/compare.py" --rust-bin "$target_dir/release/pay-ops" "$@"
