/* The demo shop's page script, shared by the axum and actix demos.
 *
 * 1. Configures the JS-SDK: GET /wechat/jssdk/config?url=<this page> -> wx.config(...); the
 *    outcome goes to #jssdk-status ("ready", or wx.error's errMsg).
 * 2. #pay: POST /wechat/pay/orders with {} (the server sets the amount), then
 *    WeixinJSBridge.invoke('getBrandWCPayRequest', params, cb); on ":ok" it polls
 *    GET /wechat/pay/orders/{out_trade_no} until the server says "paid" (the client's ":ok" is not
 *    proof of payment). #order-status ends as "paid", "cancelled", or the error.
 * A 401 from the server (the session expired) sends the browser to the login URL it names.
 */
(function () {
  'use strict';

  var POLL_INTERVAL_MS = 1000;
  var POLL_ATTEMPTS = 30;
  var BRIDGE_WAIT_MS = 5000;

  function byId(id) { return document.getElementById(id); }
  function show(id, text) { byId(id).textContent = text; }

  // Reads a JSON response; a 401 goes to the login page, other errors reject with the server's
  // message.
  function readJson(res) {
    return res.json().then(null, function () { return {}; }).then(function (body) {
      if (res.status === 401 && body && body.login_url) {
        location.assign(body.login_url);
        throw new Error('session expired, logging in again');
      }
      if (!res.ok) {
        throw new Error((body && (body.message || body.error)) || ('HTTP ' + res.status));
      }
      return body;
    });
  }

  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(readJson);
  }

  // ------------------------------------------------------------------ JS-SDK
  function configureJsSdk() {
    if (typeof window.wx === 'undefined') {
      show('jssdk-status', 'config:fail, the JS-SDK script did not load');
      return;
    }
    var pageUrl = location.href.split('#')[0];
    getJson('/wechat/jssdk/config?url=' + encodeURIComponent(pageUrl)).then(function (config) {
      window.wx.ready(function () { show('jssdk-status', 'ready'); });
      window.wx.error(function (res) {
        show('jssdk-status', (res && res.errMsg) || 'config:fail');
      });
      window.wx.config(config);
    }, function (e) {
      show('jssdk-status', 'config:fail, ' + e.message);
    });
  }

  // ------------------------------------------------------------------ payment
  // Resolves once WeixinJSBridge can be used (WeChat injects it, possibly after the page loads).
  function bridgeReady() {
    return new Promise(function (resolve, reject) {
      if (window.WeixinJSBridge && window.WeixinJSBridge.invoke) { resolve(window.WeixinJSBridge); return; }
      var timer = setTimeout(function () {
        reject(new Error('WeixinJSBridge is not available: open this page in WeChat'));
      }, BRIDGE_WAIT_MS);
      document.addEventListener('WeixinJSBridgeReady', function () {
        clearTimeout(timer);
        resolve(window.WeixinJSBridge);
      }, false);
    });
  }

  function requestPayment(params) {
    return bridgeReady().then(function (bridge) {
      return new Promise(function (resolve) {
        bridge.invoke('getBrandWCPayRequest', params, resolve);
      });
    });
  }

  function pollUntilPaid(outTradeNo, attempt) {
    return getJson('/wechat/pay/orders/' + encodeURIComponent(outTradeNo)).then(function (order) {
      if (order.status === 'paid') { return 'paid'; }
      if (order.status !== 'unpaid') { return order.status; }
      if (attempt + 1 >= POLL_ATTEMPTS) {
        return 'not confirmed yet (still unpaid); reload the page to check again';
      }
      return new Promise(function (resolve) { setTimeout(resolve, POLL_INTERVAL_MS); })
        .then(function () { return pollUntilPaid(outTradeNo, attempt + 1); });
    });
  }

  function pay() {
    var button = byId('pay');
    button.disabled = true;
    show('order-status', 'creating the order…');
    fetch('/wechat/pay/orders', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{}'
    }).then(readJson).then(function (order) {
      show('order-no', order.out_trade_no);
      show('order-status', 'waiting for the payment…');
      return requestPayment(order.params).then(function (res) {
        var msg = (res && res.err_msg) || '';
        if (msg === 'get_brand_wcpay_request:ok') {
          show('order-status', 'confirming the payment…');
          return pollUntilPaid(order.out_trade_no, 0);
        }
        if (msg === 'get_brand_wcpay_request:cancel') { return 'cancelled'; }
        return 'failed: ' + ((res && (res.err_desc || res.err_msg)) || 'unknown error');
      });
    }).then(function (status) {
      show('order-status', status);
    }, function (e) {
      show('order-status', 'failed: ' + e.message);
    }).then(function () {
      button.disabled = false;
    });
  }

  byId('pay').addEventListener('click', pay);
  configureJsSdk();
})();
