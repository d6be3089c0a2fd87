"""Side-by-side of wechat-core and wechatpy on the same inputs, in one run.

Run it through compare.sh (which makes the virtualenv and builds the Rust side):

    bash benches/wechatpy/compare.sh [--seconds 2]

The inputs come from the Rust side (`pay-ops --dump-inputs`): a typical 12-field unifiedorder
(MD5 and HMAC-SHA256), a signed payment notification, and a JS-SDK page. wechatpy must produce
the same signatures and accept the notification, otherwise the script stops: both sides are then
known to do the same work. Each operation runs for --seconds on each side; the table gives
operations per second and the ratio wechat-core / wechatpy.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import wechatpy
from wechatpy.client.api.jsapi import WeChatJSAPI
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac


def ops_per_sec(op, seconds):
    """Runs op in batches of 100 until `seconds` have passed; returns calls per second."""
    for _ in range(200):  # warm-up
        op()
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(100):
            op()
        count += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def machine():
    cpus = os.cpu_count()
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpus} CPUs, {model}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rust-bin", required=True, help="the pay-ops binary (release build)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per operation and side")
    args = parser.parse_args()

    inputs = json.loads(subprocess.run([args.rust_bin, "--dump-inputs"], check=True,
                                       capture_output=True, text=True).stdout)
    key = inputs["api_key"]
    md5_params = dict(inputs["unified_order_md5"])
    hmac_params = dict(inputs["unified_order_hmac_sha256"])
    xml = inputs["notification_xml"]
    js = inputs["jssdk"]
    expected = inputs["expected"]
    pay = WeChatPay(appid=inputs["appid"], api_key=key, mch_id=inputs["mch_id"])

    def sign_md5():
        return calculate_signature(md5_params, key)

    def sign_hmac():
        return calculate_signature_hmac(hmac_params, key)

    def notify_verify():
        return pay.parse_payment_result(xml)

    def jssdk_sign():
        # get_jsapi_signature does not use its client: call it without one.
        return WeChatJSAPI.get_jsapi_signature(None, js["noncestr"], js["ticket"],
                                               js["timestamp"], js["url"])

    # Same inputs, same answers, or the comparison means nothing.
    checks = {
        "sign_md5": sign_md5(),
        "sign_hmac_sha256": sign_hmac(),
        "jssdk_sign": jssdk_sign(),
    }
    for op, got in checks.items():
        if got != expected[op]:
            sys.exit(f"{op}: wechatpy gives {got}, wechat-core {expected[op]}: not the same work")
    paid = notify_verify()
    if paid.get("out_trade_no") != "T20240101001" or paid.get("total_fee") != 101:
        sys.exit(f"wechatpy did not accept the notification as expected: {paid}")

    load_before = loadavg()
    ops = [
        ("sign_md5", "Pay v2 sign, 12-field unifiedorder, MD5", sign_md5),
        ("sign_hmac_sha256", "Pay v2 sign, 12-field unifiedorder, HMAC-SHA256", sign_hmac),
        ("notify_verify_md5", "payment notification parse + verify (17 fields, MD5)", notify_verify),
        ("jssdk_sign", "JS-SDK signature", jssdk_sign),
    ]
    python_rates = {op: ops_per_sec(fn, args.seconds) for op, _, fn in ops}
    rust = json.loads(subprocess.run([args.rust_bin, "--only", ",".join(op for op, _, _ in ops),
                                      "--seconds", str(args.seconds)], check=True,
                                     capture_output=True, text=True).stdout)

    print(f"wechatpy {wechatpy.__version__} on {platform.python_implementation()} "
          f"{platform.python_version()} vs wechat-core (release); {args.seconds:g} s per operation and side")
    print(f"machine: {machine()} | load average before: {load_before}, after: {loadavg()}")
    print()
    print("| operation | wechatpy ops/s | wechat-core ops/s | wechat-core / wechatpy |")
    print("| --- | ---: | ---: | ---: |")
    for op, label, _ in ops:
        py, rs = python_rates[op], rust[op]
        print(f"| {label} | {py:,.0f} | {rs:,.0f} | {rs / py:,.1f}x |")


if __name__ == "__main__":
    main()
