#!/usr/bin/env bash
# Instructions per operation, counted by valgrind's callgrind: deterministic, so unlike timings
# they do not move with the machine's load. Each operation of the pay-ops binary runs 1,000 and
# 11,000 times; the difference / 10,000 is printed (setup cancels out).
#
#   bash benches/count-instructions.sh                         # every operation
#   bash benches/count-instructions.sh sign_md5 bare_md5       # some
#
# Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
cargo build --quiet --release -p wechat-benches --bin pay-ops
bin="$target_dir/release/pay-ops"

count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --op "$1" --iterations "$2" 2>&1 \
        | awk '/Collected/ { print $NF }'
}

if [ "$#" -eq 0 ]; then
    set -- sign_md5 bare_md5 sign_hmac_sha256 bare_hmac_sha256 notify_verify_md5 jssdk_sign \
        session_decode session_decode_uncached login_decide axum_router_bare axum_router_noop_layer \
        axum_router_layer axum_router_wrapped actix_app_bare actix_app_middleware
fi
echo "| operation | instructions per call |"
echo "| --- | ---: |"
for op in "$@"; do
    small="$(count "$op" 1000)"
    large="$(count "$op" 11000)"
    echo "| $op | $(( (large - small) / 10000 )) |"
done
