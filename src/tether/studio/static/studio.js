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
    el.tetherRefresh = tick;
  }

  // A run page's live panel: the run's events (Server-Sent Events). A model's tokens are typed out
  // as they come and a step's progress is shown in place; a step, task or run event re-fetches the
  // page's live part at once. The browser resumes after the last event on its own if the
  // connection drops; the stream is closed once the run has ended.
  function stream(panel) {
    var steps = panel.querySelector(".stream-steps");
    var refresh = document.getElementById(panel.getAttribute("data-refresh"));
    var source = new EventSource(panel.getAttribute("data-events"));
    function block(ev) {
      var key = ev.step_id + "/" + (ev.attempt || 1);
      var el = steps.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (!el) {
        steps.querySelectorAll('[data-step="' + CSS.escape(ev.step_id) + '"]').forEach(function (old) { old.remove(); });
        el = document.createElement("div");
        el.className = "stream-step";
        el.setAttribute("data-key", key);
        el.setAttribute("data-step", ev.step_id);
        var head = document.createElement("p");
        head.className = "meta";
        head.textContent = (ev.model || ev.step) + ((ev.attempt || 1) > 1 ? " (attempt " + ev.attempt + ")" : "");
        var progress = document.createElement("p");
        progress.className = "progress muted";
        var text = document.createElement("pre");
        text.className = "tokens";
        el.appendChild(head);
        el.appendChild(progress);
        el.appendChild(text);
        steps.appendChild(el);
      }
      panel.hidden = false;
      return el;
    }
    function on(kind, handle) {
      source.addEventListener(kind, function (m) { handle(JSON.parse(m.data)); });
    }
    on("tokens", function (ev) { block(ev).querySelector(".tokens").textContent += ev.text || ""; });
    on("tokens.withheld", function (ev) { block(ev).querySelector(".progress").textContent = ev.text; });
    on("progress", function (ev) {
      var share = ev.total ? " (" + ev.done + "/" + ev.total + ")" : "";
      block(ev).querySelector(".progress").textContent = ev.text + share;
    });
    ["step.started", "step.retrying", "step.completed", "step.failed", "step.timed_out", "step.cancelled",
     "task.opened", "task.answered", "task.expired", "task.cancelled", "child.completed", "child.failed",
     "note", "decision"].forEach(function (kind) {
      on(kind, function (ev) {
        if (/^step\.(completed|failed|timed_out|cancelled)$/.test(kind)) {
          steps.querySelectorAll('[data-step="' + CSS.escape(ev.step_id) + '"]').forEach(function (el) {
            el.classList.add("ended");
          });
        }
        if (refresh && refresh.tetherRefresh) { refresh.tetherRefresh(); }
      });
    });
    ["run.completed", "run.failed", "run.cancelled", "run.terminated", "run.timed_out"].forEach(function (kind) {
      on(kind, function () {
        source.close();
        if (refresh && refresh.tetherRefresh) { refresh.tetherRefresh(); }
      });
    });
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
    document.querySelectorAll("[data-events]").forEach(stream);
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    wire(document);
  });
})();
