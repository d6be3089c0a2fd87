/* wechat-sim: a stand-in for https://res.wx.qq.com/open/js/jweixin-1.6.0.js and the
 * WeixinJSBridge that the WeChat client injects. It talks to the simulator that served it:
 *   wx.config    -> POST /_sim/jssdk/verify
 *   getBrandWCPayRequest -> POST /_sim/pay/check, then a pay sheet, then POST /_sim/pay/confirm
 * The parameters are passed on unchanged: a v2 order's (signType MD5 / HMAC-SHA256) and a v3
 * order's (signType RSA, paySign by the merchant's private key) are checked by the simulator.
 */
(function () {
  'use strict';

  var current = document.currentScript;
  var SIM = current && current.src ? new URL(current.src, location.href).origin : location.origin;

  function post(path, body) {
    return fetch(SIM + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().then(null, function () {
        throw new Error('HTTP ' + res.status + ' without JSON from wechat-sim ' + path);
      });
    });
  }

  function call(fn, arg) {
    if (typeof fn === 'function') {
      try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
    }
  }

  // ---------------------------------------------------------------- wx (JS-SDK)
  var status = 'idle';        // idle | pending | ready | failed
  var failure = null;         // {errMsg}
  var readyQueue = [];
  var errorQueue = [];
  var configured = null;

  function settle(ok, res) {
    status = ok ? 'ready' : 'failed';
    failure = ok ? null : res;
    var queue = ok ? readyQueue : errorQueue;
    readyQueue = [];
    errorQueue = [];
    for (var i = 0; i < queue.length; i++) { call(queue[i], ok ? undefined : res); }
    if (configured && configured.debug) {
      var msg = ok ? 'config:ok' : res.errMsg;
      if (window.console) { console.log('[wechat-sim] wx.config: ' + msg); }
    }
  }

  var wx = {
    config: function (cfg) {
      configured = cfg || {};
      status = 'pending';
      post('/_sim/jssdk/verify', {
        appId: configured.appId,
        timestamp: configured.timestamp,
        nonceStr: configured.nonceStr,
        signature: configured.signature,
        url: location.href.split('#')[0]
      }).then(function (res) {
        if (res && res.ok) { settle(true); } else { settle(false, { errMsg: (res && res.errMsg) || 'config:fail' }); }
      }, function (e) {
        settle(false, { errMsg: 'config:fail, ' + e.message });
      });
    },
    ready: function (fn) {
      if (status === 'ready') { call(fn); } else { readyQueue.push(fn); }
    },
    error: function (fn) {
      if (status === 'failed') { call(fn, failure); } else { errorQueue.push(fn); }
    },
    checkJsApi: function (opts) {
      opts = opts || {};
      var result = {};
      var list = opts.jsApiList || [];
      for (var i = 0; i < list.length; i++) { result[list[i]] = true; }
      var res = { checkResult: result, errMsg: 'checkJsApi:ok' };
      setTimeout(function () { call(opts.success, res); call(opts.complete, res); });
    }
  };

  // ---------------------------------------------------------------- WeixinJSBridge
  var SHEET_ID = 'sim-pay-sheet';

  function yuan(fen) {
    var n = Number(fen) || 0;
    return (n / 100).toFixed(2);
  }

  function element(tag, style, text) {
    var el = document.createElement(tag);
    if (style) { el.setAttribute('style', style); }
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  function removeSheet() {
    var old = document.getElementById(SHEET_ID);
    if (old && old.parentNode) { old.parentNode.removeChild(old); }
  }

  function showSheet(params, info, cb) {
    removeSheet();
    var overlay = element('div',
      'position:fixed;left:0;top:0;right:0;bottom:0;background:rgba(0,0,0,.5);z-index:2147483647;' +
      'display:flex;align-items:flex-end;justify-content:center;font-family:-apple-system,Arial,sans-serif;');
    overlay.id = SHEET_ID;
    var sheet = element('div',
      'background:#fff;width:100%;max-width:420px;border-radius:12px 12px 0 0;padding:20px;box-sizing:border-box;text-align:center;');
    sheet.appendChild(element('div', 'color:#888;font-size:14px;', 'wechat-sim · 微信支付'));
    sheet.appendChild(element('div', 'margin-top:12px;font-size:15px;', info.body || ''));
    var amount = element('div', 'margin:8px 0 4px;font-size:32px;font-weight:bold;', '¥' + yuan(info.total_fee));
    amount.id = 'sim-pay-amount';
    sheet.appendChild(amount);
    sheet.appendChild(element('div', 'color:#888;font-size:12px;', '商户号 ' + (info.mch_id || '')));
    var confirm = element('button',
      'display:block;width:100%;margin-top:16px;padding:12px;border:0;border-radius:6px;background:#07c160;color:#fff;font-size:17px;',
      '确认支付 Pay');
    confirm.id = 'sim-pay-confirm';
    confirm.type = 'button';
    var cancel = element('button',
      'display:block;width:100%;margin-top:8px;padding:12px;border:0;border-radius:6px;background:#f2f2f2;color:#111;font-size:17px;',
      '取消 Cancel');
    cancel.id = 'sim-pay-cancel';
    cancel.type = 'button';
    sheet.appendChild(confirm);
    sheet.appendChild(cancel);
    overlay.appendChild(sheet);
    document.body.appendChild(overlay);

    var done = false;
    confirm.addEventListener('click', function () {
      if (done) { return; }
      done = true;
      confirm.disabled = true;
      cancel.disabled = true;
      post('/_sim/pay/confirm', params).then(function (res) {
        removeSheet();
        call(cb, res);
      }, function (e) {
        removeSheet();
        call(cb, { err_msg: 'get_brand_wcpay_request:fail', err_desc: e.message });
      });
    });
    cancel.addEventListener('click', function () {
      if (done) { return; }
      done = true;
      removeSheet();
      call(cb, { err_msg: 'get_brand_wcpay_request:cancel' });
    });
  }

  function getBrandWCPayRequest(params, cb) {
    post('/_sim/pay/check', params || {}).then(function (info) {
      if (info && info.ok) {
        showSheet(params, info, cb);
      } else {
        call(cb, {
          err_msg: 'get_brand_wcpay_request:fail',
          err_desc: (info && (info.err_desc || info.err_msg)) || 'rejected by wechat-sim'
        });
      }
    }, function (e) {
      call(cb, { err_msg: 'get_brand_wcpay_request:fail', err_desc: e.message });
    });
  }

  var listeners = {};
  var bridge = {
    invoke: function (name, params, cb) {
      if (name === 'getBrandWCPayRequest') {
        getBrandWCPayRequest(params, cb);
      } else {
        setTimeout(function () {
          call(cb, { err_msg: name + ':fail', err_desc: 'wechat-sim does not simulate ' + name });
        });
      }
    },
    call: function (name, params, cb) { bridge.invoke(name, params, cb); },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); }
  };

  window.wx = window.jWeixin = wx;
  if (!window.WeixinJSBridge) {
    window.WeixinJSBridge = bridge;
    var fire = function () {
      var ev;
      try {
        ev = new Event('WeixinJSBridgeReady');
      } catch (e) {
        ev = document.createEvent('Event');
        ev.initEvent('WeixinJSBridgeReady', false, false);
      }
      document.dispatchEvent(ev);
    };
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', function () { setTimeout(fire); });
    } else {
      setTimeout(fire);
    }
  }
})();
