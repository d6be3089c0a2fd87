#!/usr/bin/env bash
# Makes a virtualenv under the Cargo target directory and installs wechatpy from PyPI into it
# (the versions in requirements.txt). Prints the virtualenv's path. Safe to run again: an
# existing virtualenv is reused and only missing packages are installed.
#
#   bash benches/wechatpy/setup-venv.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
venv="$target_dir/wechatpy-venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating a virtualenv in $venv" >&2
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
echo "$venv"
