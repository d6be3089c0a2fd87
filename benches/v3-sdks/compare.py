"""Side-by-side of wechat-core's WeChat Pay API v3 and the v3 SDKs runnable here, in one run.

Run it through compare.sh (which installs the SDKs and builds the Rust side):

    bash benches/v3-sdks/compare.sh [--seconds 2] [--repeat 5] [--rounds 100]

The inputs come from the Rust side (`pay-ops --dump-inputs`): the official test key, a JSAPI
prepay request, a JSAPI paySign and a signed, encrypted payment notification, with wechat-core's
results. Each SDK must give the same Authorization signature and paySign (RSA PKCS#1 v1.5 is
deterministic) and decrypt the notification to the same fields, otherwise the script stops.
Then every SDK, and wechat-core, is handed the notification probes (variants: stale, another
merchant, a tampered ciphertext, ...) to show which checks each makes; and each operation runs
for --seconds on each side, split into --repeat repetitions in which the sides take turns (so
that a burst of load elsewhere on a shared machine spoils one repetition of one side, not a whole
side), and the medians of the repetitions are given. wechat-core's operations run in --rounds
interleaved rounds beside the bare ring operations they contain (so that a busy machine slows
both alike), and their ratio to them is taken over all rounds, with the quartiles of the
per-round ratios beside it.

SDKs: wechatpayv3 (Python, in this process), wechatpay-node-v3 and wechatpay-axios-plugin (Node,
node_sdks.js in a child process).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from unittest import mock

import cryptography
import wechatpayv3
from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3 import core as wechatpayv3_core
from wechatpayv3 import utils as wechatpayv3_utils

HERE = os.path.dirname(os.path.abspath(__file__))
SDKS = ["wechatpayv3", "wechatpay-node-v3", "wechatpay-axios-plugin"]
OPS = [
    ("v3_authorization", "Authorization header, JSAPI prepay POST (250-byte body)"),
    ("v3_pay_sign", "JSAPI paySign"),
    ("v3_notify_verify", "payment notification verify + decrypt + parse"),
]
# wechat-core's operation, the bare ring operation it contains, and the limit on the
# ratio of their times.
BASELINES = [
    ("v3_authorization", "bare_rsa_sign", "ring RSA-2048 PKCS#1 v1.5 SHA-256 sign", 1.1),
    ("v3_pay_sign", "bare_rsa_sign", "ring RSA-2048 PKCS#1 v1.5 SHA-256 sign", 1.1),
    ("v3_notify_verify", "bare_rsa_verify_aes_gcm", "ring RSA-2048 verify + AES-256-GCM open", 1.2),
]


def ops_per_sec(op, seconds):
    """Runs op for 0.2 s of warm-up, then until `seconds` have passed; returns calls per second."""
    warm_until = time.perf_counter() + 0.2
    while time.perf_counter() < warm_until:
        op()
    count = 0
    start = time.perf_counter()
    while True:
        op()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def parse_authorization(header):
    """`WECHATPAY2-SHA256-RSA2048 k="v",...` as a dict (the order of the fields differs)."""
    scheme, _, rest = header.partition(" ")
    fields = {"scheme": scheme}
    for part in rest.split(","):
        name, _, value = part.partition("=")
        fields[name] = value.strip('"')
    return fields


def fields_differ(want, got, at=""):
    """The first field of `want` (nested too) that `got` does not have equal, or None."""
    for key, value in want.items():
        there = got.get(key) if isinstance(got, dict) else None
        if isinstance(value, dict):
            problem = fields_differ(value, there, f"{at}{key}.")
            if problem:
                return problem
        elif there != value:
            return f"{at}{key}: {there!r}, wechat-core {value!r}"
    return None


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def short(verdict):
    """`accepted` or `refused`, and the amount an accepted variant read when it is not 100."""
    if verdict.startswith("refused"):
        return "refused"
    if "(total " in verdict and "(total 100," not in verdict:
        return "accepted, reads total " + verdict.split("(total ", 1)[1].split(",")[0]
    return "accepted"


class WechatpayV3:
    """wechatpayv3 (Python) on the inputs, through its public API."""

    def __init__(self, v3):
        self.v3 = v3
        n = v3["notification"]
        self.pay = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=v3["mchid"],
            private_key=v3["merchant_private_key_pem"],
            cert_serial_no=v3["merchant_serial"],
            appid=v3["pay_sign"]["appid"],
            apiv3_key=n["api_v3_key"],
            public_key=n["wechat_pay_public_key_pem"],
            public_key_id=n["wechat_pay_public_key_id"],
        )
        # Its Authorization builder takes the key object; the same one WeChatPay loads.
        self.private_key = wechatpayv3_utils.load_private_key(v3["merchant_private_key_pem"])

    def authorization(self):
        # build_authorization reads the clock itself (time.time()); the nonce is an argument.
        p = self.v3["prepay"]
        return wechatpayv3_utils.build_authorization(
            p["url"], p["method"], self.v3["mchid"], self.v3["merchant_serial"],
            self.private_key, data=p["body"], nonce_str=p["nonce"])

    def pay_sign(self):
        p = self.v3["pay_sign"]
        return self.pay.sign([p["appid"], p["timestamp"], p["nonce"], p["package"]])

    def notify(self, headers, body):
        # The raw body as a web framework hands it over.
        return self.pay.callback(headers, body.encode())

    def check(self, expected):
        with mock.patch.object(wechatpayv3_utils.time, "time",
                               return_value=float(self.v3["prepay"]["timestamp"])):
            header = self.authorization()
        problem = authorization_differs(header, expected["authorization"])
        if problem:
            return problem
        if self.pay_sign() != expected["pay_sign"]:
            return f"paySign {self.pay_sign()}, wechat-core {expected['pay_sign']}"
        n = self.v3["notification"]
        got = self.notify(n["headers"], n["body"])
        if got is None:
            return "the notification is refused"
        return fields_differ(expected["notification"], got)

    def verdict(self, probe):
        try:
            got = self.notify(probe["headers"], probe["body"])
        except Exception as e:  # noqa: BLE001 - the SDK raises plain Exception
            return f"refused: {str(e).splitlines()[0][:120]}"
        if got is None:
            return "refused: callback() returned None"
        r = got.get("resource") or {}
        return f"accepted (total {r.get('amount', {}).get('total')}, mchid {r.get('mchid')})"


def authorization_differs(header, ours):
    got, want = parse_authorization(header), parse_authorization(ours)
    for field in ("scheme", "mchid", "nonce_str", "timestamp", "serial_no", "signature"):
        if got.get(field) != want.get(field):
            return f"Authorization {field} {got.get(field)}, wechat-core {want.get(field)}"
    return None


def no_download(*_args, **_kwargs):
    raise RuntimeError("no certificate download in the benchmark")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rust-bin", required=True, help="the pay-ops binary (release build)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="seconds per operation and side (default 2)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="repetitions of the whole measurement, the sides taking turns, "
                             "each with --seconds / --repeat per operation (default 5); the "
                             "ops/s given are the medians of the repetitions")
    parser.add_argument("--rounds", type=int, default=100,
                        help="rounds that wechat-core's operations and their bare baselines "
                             "take turns in (default 100)")
    args = parser.parse_args()

    dump = subprocess.run([args.rust_bin, "--dump-inputs"], check=True, capture_output=True,
                          text=True).stdout
    v3 = json.loads(dump)["v3"]
    expected = v3["expected"]
    # Never reach WeChat Pay from a benchmark: an unknown serial would download certificates.
    wechatpayv3_core.Core._update_certificates = no_download

    python_sdk = WechatpayV3(v3)
    problem = python_sdk.check(expected)
    if problem:
        sys.exit(f"wechatpayv3: {problem}: not the same work")
    probes = {"wechat-core": {p["name"]: p["wechat_core"] for p in v3["probes"]},
              "wechatpayv3": {p["name"]: python_sdk.verdict(p) for p in v3["probes"]}}

    load_before = loadavg()
    names = sorted({op for op, _ in OPS} | {bare for _, bare, _, _ in BASELINES})
    python_ops = {
        "v3_authorization": python_sdk.authorization,
        "v3_pay_sign": python_sdk.pay_sign,
        "v3_notify_verify": lambda: python_sdk.notify(v3["notification"]["headers"],
                                                      v3["notification"]["body"]),
    }
    share = args.seconds / args.repeat
    # Per side and operation, the rate of each repetition; wechat-core's rounds, all of them.
    runs = {side: {op: [] for op, _ in OPS} for side in ["wechat-core"] + SDKS}
    rust = {op: [] for op in names}
    versions = {"wechatpayv3": wechatpayv3.__version__}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as inputs:
        inputs.write(dump)
        inputs.flush()
        for _ in range(args.repeat):
            # wechat-core and its baselines, interleaved round by round.
            rounds = json.loads(subprocess.run(
                [args.rust_bin, "--only", ",".join(names), "--seconds", str(share),
                 "--rounds", str(max(1, args.rounds // args.repeat)), "--per-round"],
                check=True, capture_output=True, text=True).stdout)
            for op in names:
                rust[op] += rounds[op]
            for op, _ in OPS:
                runs["wechat-core"][op].append(statistics.fmean(rounds[op]))
                runs["wechatpayv3"][op].append(ops_per_sec(python_ops[op], share))
            node = subprocess.run(["node", os.path.join(HERE, "node_sdks.js"), inputs.name,
                                   str(share)], capture_output=True, text=True)
            if node.returncode != 0:
                sys.exit(f"node_sdks.js: {node.stderr.strip()}")
            node = json.loads(node.stdout)
            for name, sdk in node["sdks"].items():
                for op, _ in OPS:
                    runs[name][op].append(sdk["rates"][op])
                probes[name] = sdk["probes"]
                versions[name] = sdk["version"]
    rates = {side: {op: statistics.median(r) for op, r in ops.items()}
             for side, ops in runs.items()}

    print(f"wechat-core (release, ring) vs wechatpayv3 {versions['wechatpayv3']} on "
          f"{platform.python_implementation()} {platform.python_version()} (cryptography "
          f"{cryptography.__version__}, {openssl_backend.openssl_version_text()}), "
          f"wechatpay-node-v3 {versions['wechatpay-node-v3']} and wechatpay-axios-plugin "
          f"{versions['wechatpay-axios-plugin']} on {node['runtime']}; "
          f"{args.seconds:g} s per operation and side, in {args.repeat} repetitions")
    print(f"machine: {machine()} | load average before: {load_before}, after: {loadavg()}")
    print()
    print("| operation | wechat-core ops/s | " + " | ".join(f"{s} ops/s" for s in SDKS)
          + " | wechat-core / fastest SDK |")
    print("| --- | ---: | " + " | ".join("---:" for _ in SDKS) + " | ---: |")
    for op, label in OPS:
        ours = rates["wechat-core"][op]
        cells = [f"{rates[s][op]:,.0f} ({ours / rates[s][op]:,.1f}x)" for s in SDKS]
        fastest = max(SDKS, key=lambda s: rates[s][op])
        print(f"| {label} | {ours:,.0f} | " + " | ".join(cells)
              + f" | {ours / rates[fastest][op]:,.2f}x ({fastest}) |")
    print()
    print("Medians of the repetitions; in brackets wechat-core's ops/s over the SDK's. Spread "
          "(min-max of the repetitions): " + "; ".join(
              f"{side} {op}: {min(runs[side][op]):,.0f}-{max(runs[side][op]):,.0f}"
              for side in ["wechat-core"] + SDKS for op, _ in OPS) + ".")
    print()
    print(f"wechat-core beside the bare ring operation it contains, in {args.rounds} interleaved "
          "rounds (time ratio = bare ops/s / wechat-core ops/s over all rounds; in brackets the "
          "quartiles of the per-round ratios):")
    print()
    print("| operation | wechat-core ops/s | bare operation | bare ops/s | time ratio | "
          "target | met |")
    print("| --- | ---: | --- | ---: | ---: | ---: | --- |")
    for op, bare, bare_label, limit in BASELINES:
        ours, theirs = statistics.fmean(rust[op]), statistics.fmean(rust[bare])
        ratio = theirs / ours
        q1, _, q3 = statistics.quantiles([b / o for o, b in zip(rust[op], rust[bare])], n=4)
        print(f"| {dict(OPS)[op]} | {ours:,.0f} | {bare_label} | {theirs:,.0f} | "
              f"{ratio:.3f} ({q1:.2f}-{q3:.2f}) | <= {limit} | "
              f"{'yes' if ratio <= limit else 'NO'} |")
    print()
    print("Notification probes: signed by the test key that plays WeChat Pay unless said, "
          "verified with the clock at the notification's time.")
    print()
    print("| notification | wechat-core | " + " | ".join(SDKS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in SDKS) + " |")
    for p in v3["probes"]:
        cells = [short(probes[s][p["name"]]) for s in ["wechat-core"] + SDKS]
        print(f"| `{p['name']}`: {p['what']} | " + " | ".join(cells) + " |")
    print()
    print("Why each refused (first line):")
    for s in ["wechat-core"] + SDKS:
        reasons = {p["name"]: probes[s][p["name"]] for p in v3["probes"]
                   if probes[s][p["name"]].startswith("refused")}
        print(f"- {s}: " + "; ".join(f"`{k}` {v[len('refused: '):]}" for k, v in reasons.items()))


if __name__ == "__main__":
    main()
