// wechat-sim console: reloads the live part of the page every second and sends the actions
// to the simulator's control routes (same origin). No dependencies, no build step.
(function () {
  "use strict";
  var live = document.getElementById("sim-live");
  var result = document.getElementById("sim-console-result");
  var updated = document.getElementById("sim-console-updated");
  var toggle = document.getElementById("sim-console-live");
  var last = null;

  function editing() {
    var a = document.activeElement;
    return a && live.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT");
  }

  function refresh() {
    return fetch("/_sim/console/live", { cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        if (html !== last && !editing()) {
          live.innerHTML = html;
          last = html;
        }
        updated.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (e) { updated.textContent = "simulator unreachable: " + e; });
  }

  function show(method, url, response, text) {
    result.textContent = method + " " + url + " -> " + response.status + "\n" + text;
    result.className = "result " + (response.ok ? "ok" : "failed");
  }

  function send(method, url, body) {
    var init = { method: method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    result.textContent = method + " " + url + " …";
    return fetch(url, init)
      .then(function (r) { return r.text().then(function (t) { show(method, url, r, t); }); })
      .catch(function (e) { result.textContent = method + " " + url + " failed: " + e; })
      .then(refresh);
  }

  // The form's fields, numbers as numbers, empty ones left out.
  function fields(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.value === "") return;
      out[el.name] = el.type === "number" ? Number(el.value) : el.value;
    });
    return out;
  }

  function faultQuery(f) {
    var q = new URLSearchParams();
    q.set("path", f.path || "");
    var value = f.value === undefined ? "" : String(f.value);
    switch (f.kind) {
      case "errcode": q.set("errcode", value); break;
      case "err_code": q.set("err_code", value); break;
      case "return_code": q.set("return_code", "FAIL"); if (value) q.set("return_msg", value); break;
      case "status_code": q.set("status", value); q.set("code", f.code || ""); break;
      case "status": q.set("status", value); break;
      case "delay": q.set("fault", "delay"); q.set("delay_ms", value); break;
      default: q.set("fault", f.kind);
    }
    if (f.times) q.set("times", String(f.times));
    return q.toString();
  }

  function act(el, event) {
    var action = el.getAttribute("data-action");
    if (action === "post") {
      var body = JSON.parse(el.getAttribute("data-body") || "{}");
      if (el.tagName === "FORM") {
        var extra = fields(el);
        Object.keys(extra).forEach(function (k) { body[k] = extra[k]; });
        if (body.mode !== "concurrent_duplicates") delete body.count;
      }
      event.preventDefault();
      return send("POST", el.getAttribute("data-url"), body);
    }
    if (action === "delete") {
      event.preventDefault();
      return send("DELETE", el.getAttribute("data-url"));
    }
    if (action === "clock") {
      event.preventDefault();
      return send("POST", "/_sim/clock/advance?seconds=" + encodeURIComponent(fields(el).seconds || 0));
    }
    if (action === "clock-by") {
      event.preventDefault();
      return send("POST", "/_sim/clock/advance?seconds=" + encodeURIComponent(el.getAttribute("data-seconds")));
    }
    if (action === "fault") {
      event.preventDefault();
      return send("POST", "/_sim/fail?" + faultQuery(fields(el)));
    }
  }

  document.addEventListener("click", function (event) {
    var el = event.target.closest("button[data-action]");
    if (el) act(el, event);
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-action]");
    if (form) act(form, event);
  });

  setInterval(function () { if (toggle.checked) refresh(); }, 1000);
  refresh();
})();
