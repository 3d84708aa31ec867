// The ranking and rating page: lease a set of K responses through the JSON API, show them in
// the order drawn for this labeler, take a ranking (with ties) and/or per-aspect ratings from
// the keyboard or the mouse, submit, and show the next set without reloading the page.
// Model output and prompts are untrusted: every text is set with textContent, never as HTML.
(() => {
  "use strict";
  const app = document.getElementById("set-app");
  if (!app) return;
  const task = JSON.parse(document.getElementById("task").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  const $ = (id) => document.getElementById(id);
  const work = $("work");
  const statusLine = $("status");
  const panel = $("judgment");
  const panelUi = window.prefloopPanel; // panel.js: the phone layout of the judgment panel
  const ORDINAL = ["1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th"];

  let current = null; // the leased set: {set_id, messages, responses: [{id, text}], ...}
  let groups = []; // the ranking so far: lists of shown positions (0-based), best first
  let picked = null; // the shown position picked for ranking moves
  let allBad = false;
  let ratings = new Map(); // "position:aspect" -> value
  let cursor = 0; // the rating cell with the keyboard's focus: position * aspects + aspect
  let part = task.ask_ratings ? "rate" : "rank"; // which part the keys act on
  let shownAt = 0;
  let busy = false;
  let judged = 0;

  const aspects = task.aspects;
  const size = () => (current ? current.responses.length : 0);
  const cells = () => size() * aspects.length;

  function say(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- The ranking: groups of shown positions, best first.

  function groupOf(position) {
    return groups.findIndex((g) => g.includes(position));
  }

  function ranked() {
    return groups.reduce((n, g) => n + g.length, 0);
  }

  function takeOut(position) {
    const gi = groupOf(position);
    if (gi < 0) return -1;
    groups[gi] = groups[gi].filter((p) => p !== position);
    if (!groups[gi].length) {
      groups.splice(gi, 1);
      return gi;
    }
    return gi + 0.5; // it left a group that stays: "just below" that group's slot
  }

  function pick(position) {
    if (position >= size()) return;
    picked = position;
    if (groupOf(position) < 0) groups.push([position]);
    part = "rank";
    say("");
    refresh();
  }

  function move(delta) {
    if (picked === null) return say("Pick a response first: " + pickKeys() + ".", true);
    const gi = groupOf(picked);
    if (gi < 0) {
      groups.push([picked]);
    } else if (groups[gi].length > 1) {
      // Out of its tie, into a slot of its own just above or below the group.
      groups[gi] = groups[gi].filter((p) => p !== picked);
      groups.splice(delta < 0 ? gi : gi + 1, 0, [picked]);
    } else {
      const to = gi + delta;
      if (to < 0 || to >= groups.length) return;
      [groups[gi], groups[to]] = [groups[to], groups[gi]];
    }
    refresh();
  }

  function placeAt(rank) {
    if (picked === null) return say("Pick a response first: " + pickKeys() + ".", true);
    takeOut(picked);
    const at = Math.max(0, Math.min(rank - 1, groups.length));
    groups.splice(at, 0, [picked]);
    refresh();
  }

  function tie() {
    if (picked === null) return say("Pick a response first: " + pickKeys() + ".", true);
    let gi = groupOf(picked);
    if (gi < 0) {
      groups.push([picked]);
      gi = groups.length - 1;
    }
    const above = gi - 1;
    if (above < 0) return say("Nothing is ranked above it to tie with.", true);
    const target = groups[above];
    takeOut(picked);
    target.push(picked);
    say("");
    refresh();
  }

  function untie() {
    if (picked === null) return say("Pick a response first: " + pickKeys() + ".", true);
    const gi = groupOf(picked);
    if (gi < 0 || groups[gi].length < 2) return say("It is not tied.", true);
    groups[gi] = groups[gi].filter((p) => p !== picked);
    groups.splice(gi + 1, 0, [picked]);
    refresh();
  }

  function unrank() {
    if (picked === null) return;
    takeOut(picked);
    refresh();
  }

  function rankAction(action) {
    if (action === "up") move(-1);
    else if (action === "down") move(1);
    else if (action === "tie") tie();
    else if (action === "untie") untie();
    else if (action === "remove") unrank();
  }

  function pickKeys() {
    return `1–${size()}`;
  }

  // ---- Ratings: a value per (shown position, aspect).

  function rate(position, aspectIndex, value) {
    const aspect = aspects[aspectIndex];
    if (value < aspect.min || value > aspect.max) {
      return say(`${aspect.name} is rated from ${aspect.min} to ${aspect.max}.`, true);
    }
    ratings.set(`${position}:${aspect.name}`, value);
    say("");
    const next = position * aspects.length + aspectIndex + 1;
    if (next < cells()) cursor = next;
    else if (task.ask_ranking && ratings.size === cells()) part = "rank";
    refresh();
  }

  function rated() {
    return ratings.size;
  }

  // ---- Drawing.

  function showSet(set) {
    current = set;
    groups = [];
    picked = null;
    allBad = false;
    ratings = new Map();
    cursor = 0;
    part = task.ask_ratings ? "rate" : "rank";
    const conversation = $("conversation");
    conversation.replaceChildren();
    set.messages.forEach((m, i) => {
      const turn = el("div", "turn role-" + (m.role === "user" ? "user" : m.role === "assistant" ? "assistant" : "other"));
      turn.append(
        el("div", "who", set.messages.length > 1 ? `${m.role} · turn ${i + 1}` : "Prompt"),
        el("div", "plain", m.content),
      );
      conversation.append(turn);
    });
    const responses = $("responses");
    responses.replaceChildren();
    const picks = $("picks");
    if (picks) picks.replaceChildren();
    set.responses.forEach((r, position) => {
      const n = position + 1;
      const card = el("article", "set-response");
      card.id = `response-${n}`;
      card.dataset.position = String(position);
      card.dataset.responseId = String(r.id);
      const head = el("h2");
      const kbd = el("kbd", "", String(n));
      head.append(kbd, ` Response ${n}`, el("span", "rank-badge"));
      const body = el("div", "plain body");
      if (r.text.trim()) body.textContent = r.text;
      else body.append(el("em", "empty-response", "(empty response)"));
      card.append(head, body);
      if (task.ask_ranking) head.addEventListener("click", () => pick(position));
      if (task.ask_ratings) card.append(ratingRows(position));
      responses.append(card);
      if (picks) {
        const button = el("button", "pick");
        button.type = "button";
        button.dataset.position = String(position);
        button.append(el("kbd", "", String(n)), el("span", "pick-text", " Response"), ` ${n}`);
        button.addEventListener("click", () => pick(position));
        picks.append(button);
      }
    });
    work.dataset.setId = String(set.set_id);
    work.hidden = false;
    $("done").hidden = true;
    panelUi.setOpen(panel, false);
    refresh();
    shownAt = performance.now();
    window.scrollTo(0, 0);
  }

  function ratingRows(position) {
    const box = el("div", "ratings");
    aspects.forEach((aspect, a) => {
      const row = el("div", "aspect-row");
      row.dataset.cell = String(position * aspects.length + a);
      const name = el("span", "aspect-name", aspect.name);
      name.title = aspect.description;
      const values = el("div", "aspect-values");
      values.setAttribute("role", "radiogroup");
      values.setAttribute("aria-label", `${aspect.name} of response ${position + 1}`);
      for (let v = aspect.min; v <= aspect.max; v++) {
        const b = el("button", "rate", String(v));
        b.type = "button";
        b.dataset.value = String(v);
        b.addEventListener("click", () => {
          cursor = position * aspects.length + a;
          rate(position, a, v);
        });
        values.append(b);
      }
      row.append(name, values);
      box.append(row);
    });
    return box;
  }

  function refresh() {
    if (!current) return;
    const label = (p) => String(p + 1);
    document.querySelectorAll(".set-response").forEach((card) => {
      const position = Number(card.dataset.position);
      const gi = groupOf(position);
      card.classList.toggle("picked", part === "rank" && position === picked);
      const badge = card.querySelector(".rank-badge");
      if (task.ask_ranking) {
        badge.textContent = gi < 0 ? "" : ` · ${ORDINAL[gi]}${groups[gi].length > 1 ? " (tie)" : ""}`;
      }
      card.dataset.rank = gi < 0 ? "" : String(gi + 1);
      card.querySelectorAll(".aspect-row").forEach((row) => {
        const cell = Number(row.dataset.cell);
        const aspect = aspects[cell % aspects.length];
        const value = ratings.get(`${position}:${aspect.name}`);
        row.classList.toggle("cursor", part === "rate" && cell === cursor);
        row.querySelectorAll(".rate").forEach((b) => {
          b.setAttribute("aria-pressed", String(Number(b.dataset.value) === value));
        });
      });
    });
    document.querySelectorAll(".pick").forEach((b) => {
      const position = Number(b.dataset.position);
      b.setAttribute("aria-pressed", String(position === picked));
      b.classList.toggle("ranked", groupOf(position) >= 0);
    });
    const line = $("ranking-line");
    if (line) {
      const order = groups.map((g) => g.map(label).join(" = ")).join(" > ");
      const left = size() - ranked();
      line.textContent = (order ? `Ranking: ${order}` : "Ranking: pick the responses, best first") +
        (order && left ? ` (${left} unranked)` : "");
    }
    const bad = $("all-bad");
    if (bad) bad.setAttribute("aria-pressed", String(allBad));
    const progress = $("rate-part");
    if (progress) progress.textContent = `Rated ${rated()} of ${cells()}`;
    document.querySelectorAll(".set-part").forEach((p) => p.classList.toggle("active", p.dataset.part === part));
    work.dataset.part = part;
    work.dataset.allBad = String(allBad);
    panelUi.setChosen(panel, true);
  }

  // ---- Talking to the API.

  async function api(url, options = {}) {
    const headers = { Accept: "application/json", "X-CSRFToken": csrf };
    if (options.body) headers["Content-Type"] = "application/json";
    return fetch(url, { credentials: "same-origin", ...options, headers });
  }

  function showDone() {
    current = null;
    work.hidden = true;
    delete work.dataset.setId;
    $("done").hidden = false;
  }

  async function loadNext() {
    busy = true;
    try {
      const r = await api(app.dataset.nextUrl);
      if (r.status === 204) showDone();
      else if (r.ok) showSet(await r.json());
      else {
        const answer = await r.json().catch(() => ({}));
        say(answer.detail || `Could not load the next set (HTTP ${r.status}). Reload the page to retry.`, true);
      }
    } catch (e) {
      say("The server did not answer. Reload the page to retry.", true);
    } finally {
      busy = false;
    }
  }

  function body() {
    const ids = current.responses.map((r) => r.id);
    const out = { set_id: current.set_id, time_spent_ms: Math.round(performance.now() - shownAt) };
    if (task.ask_ranking) {
      out.all_bad = allBad;
      out.ranking = groups.length ? groups.map((g) => (g.length === 1 ? ids[g[0]] : g.map((p) => ids[p]))) : null;
    }
    if (task.ask_ratings) {
      out.ratings = [];
      ratings.forEach((value, key) => {
        const [position, aspect] = key.split(/:(.*)/s);
        out.ratings.push({ response_id: ids[Number(position)], aspect, value });
      });
    }
    return out;
  }

  // What is still owed before a submit, in words; "" when nothing is.
  function owed() {
    if (task.ask_ratings && rated() < cells()) {
      return `Rate every response on every aspect (${rated()} of ${cells()} done).`;
    }
    if (task.ask_ranking) {
      const partial = groups.length && ranked() < size();
      if (partial) return `Rank every response (${ranked()} of ${size()} ranked), or take them out.`;
      if (!groups.length && !allBad) return `Rank the responses (press ${pickKeys()}, best first), or mark all bad (b).`;
    }
    return "";
  }

  async function submit() {
    if (!current || busy) return;
    const missing = owed();
    if (missing) return say(missing, true);
    busy = true;
    try {
      const r = await api(app.dataset.submitUrl, { method: "POST", body: JSON.stringify(body()) });
      const answer = await r.json().catch(() => ({}));
      if (r.status === 201 || (r.status === 409 && answer.code === "set_exists")) {
        judged += 1;
        $("session-count").textContent = `${judged} judged this session`;
        say("");
      } else if (r.status === 409) {
        say(answer.detail || "This set was already fully judged; here is another.");
      } else {
        busy = false;
        return say(answer.detail || `Not saved (HTTP ${r.status}).`, true);
      }
    } catch (e) {
      busy = false;
      return say("Not saved: the server did not answer. Try again.", true);
    }
    await loadNext();
  }

  async function skip() {
    if (!current || busy) return;
    busy = true;
    try {
      await api(app.dataset.skipUrl.replace(/\/0\/skip\/$/, `/${current.set_id}/skip/`), { method: "POST" });
    } catch (e) {
      // The lease expires on its own; moving on matters more.
    }
    say("Skipped.");
    await loadNext();
  }

  function toggle(id, button) {
    const node = $(id);
    node.hidden = !node.hidden;
    if (button) button.setAttribute("aria-expanded", String(!node.hidden));
  }

  function toggleAllBad() {
    if (!task.ask_ranking) return;
    allBad = !allBad;
    refresh();
  }

  // ---- Mouse.
  document.querySelectorAll(".rank-action").forEach((b) => b.addEventListener("click", () => {
    part = "rank";
    rankAction(b.dataset.action);
  }));
  if ($("all-bad")) $("all-bad").addEventListener("click", toggleAllBad);
  panel.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("skip").addEventListener("click", skip);
  $("toggle-instructions").addEventListener("click", (e) => toggle("instructions", e.currentTarget));
  $("toggle-keys").addEventListener("click", () => toggle("keys"));

  // ---- Keyboard.
  function rateKey(e) {
    const digit = /^Digit([0-9])$/.exec(e.code);
    if (digit && !e.shiftKey) {
      const position = Math.floor(cursor / aspects.length);
      rate(position, cursor % aspects.length, Number(digit[1]));
      return true;
    }
    const steps = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: aspects.length, ArrowUp: -aspects.length };
    if (e.key in steps && !(task.ask_ranking && (e.key === "ArrowUp" || e.key === "ArrowDown"))) {
      cursor = Math.max(0, Math.min(cells() - 1, cursor + steps[e.key]));
      refresh();
      return true;
    }
    return false;
  }

  function rankKey(e) {
    const digit = /^Digit([1-9])$/.exec(e.code);
    if (digit && e.shiftKey) {
      placeAt(Number(digit[1]));
      return true;
    }
    if (digit) {
      pick(Number(digit[1]) - 1);
      return true;
    }
    const actions = { ArrowUp: "up", ArrowDown: "down", "=": "tie", "-": "untie", Backspace: "remove", Delete: "remove" };
    if (e.key in actions) {
      rankAction(actions[e.key]);
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLElement && e.target.matches("textarea, input, select")) return;
    if (!current) return;
    let handled = false;
    if (e.key === "Tab" && task.ask_ranking && task.ask_ratings) {
      part = part === "rate" ? "rank" : "rate";
      refresh();
      handled = true;
    } else if (part === "rate" && task.ask_ratings) handled = rateKey(e);
    else if (part === "rank" && task.ask_ranking) handled = rankKey(e);
    if (!handled) {
      const key = e.key.toLowerCase();
      if (key === "enter") submit();
      else if (key === "b" && task.ask_ranking) toggleAllBad();
      else if (key === "s") skip();
      else if (key === "?") toggle("keys");
      else if (key === "escape") {
        $("keys").hidden = true;
        $("instructions").hidden = true;
      } else return;
    }
    e.preventDefault();
  });

  loadNext();
})();
