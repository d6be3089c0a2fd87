#!/usr/bin/env bash
# Profiles the login middleware under load with perf, and prints its share of the server
# worker's CPU split by what it does (profile/attribute.py). Run on a quiet machine.
#
#   bash benches/profile-middleware.sh            # axum and actix-web
#   bash benches/profile-middleware.sh axum
#
# Needs perf (Debian: apt-get install linux-perf) and permission to record (root, or
# kernel.perf_event_paranoid <= 1). perf.data files go to <target dir>/bench-results/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
out="$target_dir/bench-results"
mkdir -p "$out"
cargo build --quiet --release -p wechat-loadtest --bin load

profile() {
    local name="$1" only="$2" comm="$3" middleware="$4" inner="$5"
    echo "== $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    perf record --quiet -F 2999 -g --call-graph dwarf,16384 -o "$out/perf-$name.data" -- \
        "$target_dir/release/load" --only "$only" --duration 4 --rounds 1 2>/dev/null | grep '^| [a-z]'
    perf script -i "$out/perf-$name.data" -F comm,ip,sym 2>/dev/null > "$out/perf-$name.txt"
    python3 "$here/profile/attribute.py" "$out/perf-$name.txt" "$comm" "$middleware" "$inner"
}

for framework in "${@:-axum actix}"; do
    for f in $framework; do
        case "$f" in
            axum) profile axum "axum + WeChatLoginLayer" axum-worker 'WeChatLogin.*::call' \
                'Route|MethodRouter|[Hh]andler|axum_hello|BoxClone' ;;
            actix) profile actix "actix-web + WeChatLoginMiddleware" actix-rt 'WeChatLogin.*::call' 'AppRouting' ;;
            *) echo "unknown framework $f (axum or actix)" >&2; exit 2 ;;
        esac
    done
done
