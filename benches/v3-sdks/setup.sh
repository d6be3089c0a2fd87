#!/usr/bin/env bash
# Installs the WeChat Pay v3 SDKs that compare.sh measures, beside this script: wechatpayv3
# (PyPI, the versions in requirements.txt) into the virtualenv .venv, and wechatpay-node-v3 and
# wechatpay-axios-plugin (npm, the versions in package-lock.json) into node_modules. Both are
# ignored by git. Safe to run again: what is installed already is kept.
#
#   bash benches/v3-sdks/setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [ ! -x .venv/bin/python ]; then
    echo "creating a virtualenv in benches/v3-sdks/.venv" >&2
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt >&2

if ! npm ls --silent >/dev/null 2>&1; then
    echo "installing the Node SDKs into benches/v3-sdks/node_modules" >&2
    npm ci --silent --no-audit --no-fund >&2
fi
