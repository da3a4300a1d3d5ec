// tether Studio: live refresh of running things, union forms, confirmations. No dependencies.
(function () {
  "use strict";

  // Elements with data-live="URL" are re-fetched every data-every ms while the page is visible,
  // until the fragment marks itself final (data-final). Open <details> stay open across refreshes.
  function live(el) {
    var every = parseInt(el.getAttribute("data-every") || "2000", 10);
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(el.getAttribute("data-live"), { credentials: "same-origin", headers: { "X-Requested-With": "studio" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          busy = false;
          if (html === null) { return; }
          var open = {};
          el.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
          el.innerHTML = html;
          el.querySelectorAll("details[id]").forEach(function (d) { if (d.id in open) { d.open = open[d.id]; } });
          wire(el);
          if (el.querySelector("[data-final]")) { clearInterval(timer); }
        })
        .catch(function () { busy = false; });
    }
    var timer = setInterval(tick, every);
  }

  // A tagged union's select shows only the fields of the chosen variant.
  function union(select) {
    function show() {
      document.querySelectorAll('[data-variant-of="' + select.getAttribute("data-union") + '"]').forEach(function (v) {
        v.hidden = v.getAttribute("data-value") !== select.value;
      });
    }
    select.addEventListener("change", show);
    show();
  }

  function wire(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
    root.querySelectorAll("select[data-union]").forEach(union);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(live);
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    wire(document);
  });
})();
