// The staff training page: "Retrain now" and "Cancel" post to the API, the run is followed by
// polling its JSON every second (no page reload), the server's SVG of the loss curve is swapped in
// as it moves, and the server-rendered tables are swapped for fresh ones when the run ends.
(function () {
  "use strict";
  const root = document.getElementById("training");
  if (!root) return;
  const pollMs = Number(root.dataset.pollMs) || 1000;
  const byId = (id) => document.getElementById(id);
  let run = JSON.parse(byId("initial-run").textContent);
  let timer = null;

  function csrfToken() {
    return byId("retrain-form").querySelector("[name=csrfmiddlewaretoken]").value;
  }

  async function post(url) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      credentials: "same-origin",
    });
    let body;
    try {
      body = await res.json();
    } catch (e) {
      body = { detail: res.status + " " + res.statusText };
    }
    return { ok: res.ok, body: body };
  }

  function say(text, isError) {
    const m = byId("run-message");
    m.textContent = text;
    m.className = isError ? "error" : "muted";
  }

  function fmt(x, digits) {
    return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
  }

  // The loss chart is the server's (annotate/charts.py draws every chart of the app, so the
  // page has one engine and one escaping): swap in a fresh copy whenever the curve moved.
  let shownCurve = curveKey(run);
  let curveRequest = 0;

  function curveKey(r) {
    if (!r) return "";
    const c = r.loss_curve || [];
    return r.id + ":" + c.length + ":" + (c.length ? c[c.length - 1].join(",") : "");
  }

  async function refreshCurve(r) {
    const key = curveKey(r);
    if (key === shownCurve) return;
    shownCurve = key;
    const request = ++curveRequest;
    try {
      const url = root.dataset.chartUrl + "?run=" + encodeURIComponent(r.id);
      const res = await fetch(url, { credentials: "same-origin" });
      if (!res.ok) throw new Error(res.status + " " + res.statusText);
      const svg = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
      // A slower, older answer never replaces a newer one.
      if (request === curveRequest) byId("loss-curve").replaceWith(document.importNode(svg.documentElement, true));
    } catch (e) {
      if (request === curveRequest) shownCurve = null;  // retried at the next poll
    }
  }

  function outcome(r) {
    if (r.cancel_requested && r.active) return "Stopping at the next step…";
    const v = r.model_version;
    if (!v) return "";
    return "Version " + v.version + (v.promoted ? " was promoted: " : " was not promoted: ") + v.reason;
  }

  function render(r) {
    run = r;
    byId("run-panel").hidden = false;
    byId("run-id").textContent = r.id;
    const status = byId("run-status");
    status.textContent = r.status_label;
    status.dataset.status = r.status;
    const percent = Math.round(r.fraction * 100);
    byId("run-progress").value = percent;
    byId("run-percent").textContent =
      r.status === "succeeded" ? "done" : r.done ? r.status_label.toLowerCase() : percent + "%";
    byId("run-step").textContent = r.step;
    byId("run-total").textContent = r.total || "?";
    byId("run-loss").textContent = fmt(r.loss, 4);
    byId("run-pps").textContent = fmt(r.pairs_per_second, 1);
    byId("run-device").textContent = r.device || "device not chosen yet";
    byId("run-scale").textContent = r.scale || "";
    const error = byId("run-error");
    error.textContent = r.error;
    error.hidden = !r.error;
    const cancel = byId("run-cancel");
    cancel.hidden = !r.active;
    cancel.disabled = r.cancel_requested;
    byId("run-outcome").textContent = outcome(r);
    refreshCurve(r);
  }

  // The version, run and queue tables are the server's: fetch this page again and take its
  // copies (when a run is queued, starts and ends, so "Recent runs" always lists it).
  async function refreshTables() {
    const res = await fetch(location.pathname, { credentials: "same-origin" });
    if (!res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), "text/html");
    for (const id of ["versions", "runs", "queue", "pair-counts"]) {
      const next = fresh.getElementById(id);
      if (next) byId(id).replaceWith(document.importNode(next, true));
    }
  }

  async function poll() {
    timer = null;
    try {
      const res = await fetch(run.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const r = await res.json();
        const moved = r.status !== run.status;
        render(r);
        if (r.done) {
          await refreshTables();
          return;
        }
        if (moved) await refreshTables();
      }
    } catch (e) {
      // A missed poll (server restarting, network blip) is retried at the next tick.
    }
    follow();
  }

  function follow() {
    if (!timer) timer = setTimeout(poll, pollMs);
  }

  byId("retrain-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("retrain-now");
    button.disabled = true;
    say("Starting…", false);
    try {
      const res = await post(root.dataset.createUrl);
      if (res.ok) {
        say(res.body.message, false);
        render(res.body);
        follow();
        await refreshTables();
      } else {
        say(res.body.detail || "The run was not started.", true);
      }
    } catch (e) {
      say("The server could not be reached: " + e.message, true);
    } finally {
      button.disabled = false;
    }
  });

  byId("run-cancel").addEventListener("click", async () => {
    const res = await post(run.cancel_url);
    if (res.ok) {
      render(res.body);
      follow();
    } else {
      say(res.body.detail || "The run was not cancelled.", true);
    }
  });

  if (run) {
    render(run);
    if (run.active) follow();
  }
})();
