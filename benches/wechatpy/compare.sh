#!/usr/bin/env bash
# The side-by-side with wechatpy, in one command: makes the virtualenv (setup-venv.sh), builds
# the Rust side (the pay-ops binary, release), and runs compare.py, which checks that both give
# the same signatures on the same inputs and prints ops/s for both and the ratio.
#
#   bash benches/wechatpy/compare.sh              # 2 s per operation and side
#   bash benches/wechatpy/compare.sh --seconds 5
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
venv="$(bash "$here/setup-venv.sh")"
cargo build --quiet --release -p wechat-benches --bin pay-ops
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$venv/bin/python" "$here/compare.py" --rust-bin "$target_dir/release/pay-ops" "$@"
