// The Node side of benches/v3-sdks/compare.py: wechatpay-node-v3 and wechatpay-axios-plugin on
// the inputs of `pay-ops --dump-inputs`, in one process.
//
//   node node_sdks.js INPUTS.json SECONDS
//
// For each SDK it checks that the Authorization signature and the paySign equal wechat-core's
// and that the notification decrypts to the same fields (exit 1 otherwise), runs every
// notification probe through the SDK's verification and records whether it was accepted, then
// measures each operation for SECONDS. Prints one JSON object.
'use strict';

const fs = require('fs');
const path = require('path');

const NodeV3 = require('wechatpay-node-v3');
const { Rsa, Formatter, Aes, Decorator } = require('wechatpay-axios-plugin');

const inputs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')).v3;
const seconds = Number(process.argv[3] || '2');
const expected = inputs.expected;
const prepay = inputs.prepay;
const page = inputs.pay_sign;
const notification = inputs.notification;
const apiV3Key = notification.api_v3_key;

function version(name) {
  const file = path.join(__dirname, 'node_modules', name, 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

function fail(message) {
  process.stderr.write(`node_sdks: ${message}\n`);
  process.exit(1);
}

// `WECHATPAY2-SHA256-RSA2048 k="v",…` as {scheme, k: v, …} (the SDKs order the fields
// differently; WeChat Pay reads them in any order).
function parseAuthorization(header) {
  const [scheme, rest] = [header.slice(0, header.indexOf(' ')), header.slice(header.indexOf(' ') + 1)];
  const fields = { scheme };
  for (const match of rest.matchAll(/(\w+)="([^"]*)"/g)) {
    fields[match[1]] = match[2];
  }
  return fields;
}

// Every field of `want` (nested objects too) is equal in `got`; nulls in `want` are absent or
// null in `got`.
function fieldsEqual(want, got, at = '') {
  for (const [key, value] of Object.entries(want)) {
    const there = got == null ? undefined : got[key];
    if (value !== null && typeof value === 'object') {
      const problem = fieldsEqual(value, there, `${at}${key}.`);
      if (problem) return problem;
    } else if (value === null ? there != null : there !== value) {
      return `${at}${key}: ${JSON.stringify(there)}, wechat-core ${JSON.stringify(value)}`;
    }
  }
  return null;
}

// Runs `op` until `secs` have passed, after a warm-up; returns calls per second. `op` may be
// async (awaited each call).
async function opsPerSec(op, secs, isAsync) {
  const warmUntil = process.hrtime.bigint() + 200_000_000n;
  while (process.hrtime.bigint() < warmUntil) {
    if (isAsync) await op(); else op();
  }
  const budget = BigInt(Math.round(secs * 1e9));
  const start = process.hrtime.bigint();
  let count = 0;
  for (;;) {
    if (isAsync) {
      await op();
    } else {
      op();
    }
    count += 1;
    const elapsed = process.hrtime.bigint() - start;
    if (elapsed >= budget) {
      return count / (Number(elapsed) / 1e9);
    }
  }
}

// --- wechatpay-node-v3 -------------------------------------------------------------------------

const nodeV3 = new NodeV3({
  appid: page.appid,
  mchid: inputs.mchid,
  serial_no: inputs.merchant_serial,
  // Only read for the serial when serial_no is not given.
  publicKey: Buffer.from(notification.wechat_pay_public_key_pem),
  privateKey: Buffer.from(inputs.merchant_private_key_pem),
  key: apiV3Key,
});
// The platform keys it verifies with (what fetchCertificates would store), by serial.
NodeV3.certificates = { [notification.wechat_pay_public_key_id]: notification.wechat_pay_public_key_pem };
// Never reach WeChat Pay from a benchmark: an unknown serial would download certificates.
NodeV3.prototype.fetchCertificates = async () => { throw new Error('no certificate download in the benchmark'); };

// buildAuthorization() with its random nonce and clock replaced by the inputs': the same two
// calls it makes.
function nodeV3Authorization() {
  const signature = nodeV3.getSignature(prepay.method, prepay.nonce, String(prepay.timestamp), prepay.url, prepay.body);
  return nodeV3.getAuthorization(prepay.nonce, String(prepay.timestamp), signature);
}

// What transactions_jsapi() does for the page's paySign.
function nodeV3PaySign() {
  return nodeV3.sign([page.appid, page.timestamp, page.nonce, page.package, ''].join('\n'));
}

// Its documented notification handling: verifySign() on the headers and the raw body, then
// decipher_gcm() on the resource.
async function nodeV3Notify(headers, body) {
  const ok = await nodeV3.verifySign({
    timestamp: headers['Wechatpay-Timestamp'],
    nonce: headers['Wechatpay-Nonce'],
    serial: headers['Wechatpay-Serial'],
    signature: headers['Wechatpay-Signature'],
    body,
  });
  if (!ok) throw new Error('verifySign: false');
  const envelope = JSON.parse(body);
  const r = envelope.resource;
  envelope.resource = nodeV3.decipher_gcm(r.ciphertext, r.associated_data, r.nonce, apiV3Key);
  return envelope;
}

// --- wechatpay-axios-plugin --------------------------------------------------------------------

// Loaded once, as Decorator.jsonBased() does with the configuration.
const axiosPrivateKey = Rsa.from(inputs.merchant_private_key_pem, Rsa.KEY_TYPE_PRIVATE);
const axiosCerts = {
  [notification.wechat_pay_public_key_id]: Rsa.from(notification.wechat_pay_public_key_pem, Rsa.KEY_TYPE_PUBLIC),
};
// The verifier of its replies' Wechatpay-* headers (the axios transformResponse step).
const axiosVerifier = Decorator.responseVerifier(axiosCerts);
// Its clock, at the notification's time (as wechat-core's is).
Formatter.timestamp = () => notification.at;

// The request interceptor's signing, without axios: message, signature, header.
function axiosAuthorization() {
  const signature = Rsa.sign(
    Formatter.request(prepay.method, prepay.url, prepay.timestamp, prepay.nonce, prepay.body),
    axiosPrivateKey,
  );
  return Formatter.authorization(inputs.mchid, prepay.nonce, signature, prepay.timestamp, inputs.merchant_serial);
}

// Its README's JSAPI paySign.
function axiosPaySign() {
  return Rsa.sign(Formatter.joinedByLineFeed(page.appid, page.timestamp, page.nonce, page.package), axiosPrivateKey);
}

// It has no notification API: its reply verifier (headers, clock skew, serial, RSA) on the
// notification, then Aes.AesGcm.decrypt as its README says, and JSON.parse.
function axiosNotify(headers, body) {
  const verified = axiosVerifier.call({ url: '/wechat/pay/notify' }, body, headers, 200);
  if (verified instanceof Error) throw verified;
  const envelope = JSON.parse(verified);
  const r = envelope.resource;
  envelope.resource = JSON.parse(Aes.AesGcm.decrypt(r.ciphertext, apiV3Key, r.nonce, r.associated_data));
  return envelope;
}

// --- checks, probes, timing --------------------------------------------------------------------

async function verdict(notify, probe) {
  try {
    const got = await notify(probe.headers, probe.body);
    if (got == null || typeof got.resource !== 'object') {
      return `accepted, resource not JSON (${typeof got.resource})`;
    }
    return `accepted (total ${got.resource.amount && got.resource.amount.total}, mchid ${got.resource.mchid})`;
  } catch (e) {
    return `refused: ${String(e.message || e).split('\n')[0].slice(0, 120)}`;
  }
}

async function main() {
  const sdks = [
    ['wechatpay-node-v3', nodeV3Authorization, nodeV3PaySign, nodeV3Notify, true],
    ['wechatpay-axios-plugin', axiosAuthorization, axiosPaySign, axiosNotify, false],
  ];
  const out = { runtime: `Node.js ${process.version} (OpenSSL ${process.versions.openssl})`, sdks: {} };
  for (const [name, authorization, paySign, notify, notifyIsAsync] of sdks) {
    const header = parseAuthorization(authorization());
    const ours = parseAuthorization(expected.authorization);
    for (const field of ['scheme', 'mchid', 'nonce_str', 'timestamp', 'serial_no', 'signature']) {
      if (header[field] !== ours[field]) {
        fail(`${name}: Authorization ${field} is ${header[field]}, wechat-core's ${ours[field]}`);
      }
    }
    if (paySign() !== expected.pay_sign) {
      fail(`${name}: paySign ${paySign()}, wechat-core's ${expected.pay_sign}`);
    }
    const paid = await notify(notification.headers, notification.body);
    const problem = fieldsEqual(expected.notification, paid);
    if (problem) fail(`${name}: notification ${problem}`);

    const probes = {};
    for (const probe of inputs.probes) {
      probes[probe.name] = await verdict(notify, probe);
    }
    if (!probes.genuine.startsWith('accepted') || probes.forged_body.startsWith('accepted')) {
      fail(`${name}: genuine ${probes.genuine}, forged ${probes.forged_body}`);
    }

    const rates = {
      v3_authorization: await opsPerSec(authorization, seconds, false),
      v3_pay_sign: await opsPerSec(paySign, seconds, false),
      v3_notify_verify: await opsPerSec(() => notify(notification.headers, notification.body), seconds, notifyIsAsync),
    };
    out.sdks[name] = { version: version(name), probes, rates };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => fail(e.stack || String(e)));
