// The labeling page: lease a pair through the JSON API, show it, take the judgment from the
// keyboard or the mouse, submit, and show the next pair without reloading the page.
// Model output arrives as HTML already sanitized on the server (markdown-it without raw HTML,
// then nh3); everything else on the page is set with textContent.
(() => {
  "use strict";
  const app = document.getElementById("label-app");
  if (!app) return;
  const scale = JSON.parse(document.getElementById("scale").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const STRENGTH_KEYS = ["q", "w", "e", "r", "t", "y", "u", "i", "o", "p"];
  const CHOICE_KEYS = { 1: "left", 2: "right", 3: "tie", 4: "both_bad" };

  const $ = (id) => document.getElementById(id);
  const work = $("work");
  const statusLine = $("status");
  const comment = $("comment");
  const left = $("response-left");
  const right = $("response-right");
  const panel = $("judgment");
  const panelUi = window.prefloopPanel; // panel.js: the phone layout of the judgment panel

  let current = null; // the leased pair: {pair_id, messages, responses: [left, right], ...}
  let choice = null; // "left" | "right" | "tie" | "both_bad"
  let strength = null;
  let reasons = new Set();
  let shownAt = 0;
  let busy = false;
  let judged = 0;

  document.querySelectorAll(".strength-key").forEach((el) => {
    el.textContent = STRENGTH_KEYS[Number(el.dataset.level) - 1] || "";
  });

  function say(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  function decisive() {
    return choice === "left" || choice === "right";
  }

  function refresh() {
    document.querySelectorAll(".choice").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.choice === choice));
    });
    document.querySelectorAll(".strength").forEach((b) => {
      b.disabled = !decisive();
      b.setAttribute("aria-pressed", String(decisive() && Number(b.dataset.level) === strength));
    });
    document.querySelectorAll(".reason").forEach((b) => {
      b.setAttribute("aria-pressed", String(reasons.has(b.dataset.reason)));
    });
    left.classList.toggle("chosen", choice === "left");
    right.classList.toggle("chosen", choice === "right");
    work.dataset.choice = choice || "";
    panelUi.setChosen(panel, choice !== null);
  }

  // On a phone the strength sits in the panel's folded part: open it when it is still owed.
  function openIfStrengthOwed() {
    if (scale.ask_strength && decisive() && !strength) panelUi.setOpen(panel, true);
  }

  function showPair(pair) {
    current = pair;
    choice = null;
    strength = null;
    reasons = new Set();
    comment.value = "";
    const conversation = $("conversation");
    conversation.replaceChildren();
    pair.messages.forEach((m, i) => {
      const turn = document.createElement("div");
      turn.className = "turn role-" + (m.role === "user" ? "user" : m.role === "assistant" ? "assistant" : "other");
      const who = document.createElement("div");
      who.className = "who";
      who.textContent = pair.messages.length > 1 ? `${m.role} · turn ${i + 1}` : "Prompt";
      const body = document.createElement("div");
      body.className = "md";
      body.innerHTML = m.html; // sanitized server-side
      turn.append(who, body);
      conversation.append(turn);
    });
    [left, right].forEach((panel, i) => {
      panel.dataset.responseId = String(pair.responses[i].id);
      panel.querySelector(".body").innerHTML = pair.responses[i].html; // sanitized server-side
    });
    work.dataset.pairId = String(pair.pair_id);
    work.hidden = false;
    $("done").hidden = true;
    panelUi.setOpen(panel, false);
    refresh();
    shownAt = performance.now();
    window.scrollTo(0, 0);
  }

  function showDone() {
    current = null;
    work.hidden = true;
    delete work.dataset.pairId;
    $("done").hidden = false;
  }

  async function api(url, options = {}) {
    const headers = { Accept: "application/json", "X-CSRFToken": csrf };
    if (options.body) headers["Content-Type"] = "application/json";
    return fetch(url, { credentials: "same-origin", ...options, headers });
  }

  async function loadNext() {
    busy = true;
    try {
      const r = await api(app.dataset.nextUrl);
      if (r.status === 204) showDone();
      else if (r.ok) showPair(await r.json());
      else if (r.status === 403) {
        const answer = await r.json().catch(() => ({}));
        say(answer.detail || "You cannot label this project.", true);
      } else say(`Could not load the next pair (HTTP ${r.status}). Reload the page to retry.`, true);
    } catch (e) {
      say("The server did not answer. Reload the page to retry.", true);
    } finally {
      busy = false;
    }
  }

  function preferred() {
    if (choice === "left") return current.responses[0].id;
    if (choice === "right") return current.responses[1].id;
    return choice;
  }

  async function submit() {
    if (!current || busy) return;
    if (!choice) return say("Choose first: 1 left, 2 right" + (scale.allow_tie ? ", 3 tie" : "") + (scale.allow_both_bad ? ", 4 both bad" : "") + ".", true);
    if (scale.ask_strength && decisive() && !strength) {
      openIfStrengthOwed();
      if (panelUi.isNarrow()) return say("How much better? Choose a strength.", true);
      return say(`How much better? Press ${STRENGTH_KEYS.slice(0, scale.strength_labels.length).join(" ")}.`, true);
    }
    busy = true;
    const body = {
      pair_id: current.pair_id,
      preferred: preferred(),
      strength: decisive() ? strength : null,
      reasons: [...reasons],
      comment: comment.value,
      time_spent_ms: Math.round(performance.now() - shownAt),
    };
    try {
      const r = await api(app.dataset.comparisonsUrl, { method: "POST", body: JSON.stringify(body) });
      const answer = r.status === 204 ? {} : await r.json().catch(() => ({}));
      if (r.status === 201 || (r.status === 409 && answer.code === "exists")) {
        judged += 1;
        $("session-count").textContent = `${judged} judged this session`;
        say("");
      } else if (r.status === 409) {
        say(answer.detail || "This pair was already fully judged; here is another.");
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
      await api(app.dataset.skipUrl.replace(/\/0\/skip\/$/, `/${current.pair_id}/skip/`), { method: "POST" });
    } catch (e) {
      // The lease expires on its own; moving on matters more.
    }
    say("Skipped.");
    await loadNext();
  }

  function choose(value) {
    if (value === "tie" && !scale.allow_tie) return;
    if (value === "both_bad" && !scale.allow_both_bad) return;
    choice = value;
    if (!decisive()) strength = null;
    say("");
    refresh();
    openIfStrengthOwed();
  }

  function toggle(id, button) {
    const el = $(id);
    el.hidden = !el.hidden;
    if (button) button.setAttribute("aria-expanded", String(!el.hidden));
  }

  // Mouse.
  document.querySelectorAll(".choice").forEach((b) => b.addEventListener("click", () => choose(b.dataset.choice)));
  left.addEventListener("dblclick", () => choose("left"));
  right.addEventListener("dblclick", () => choose("right"));
  document.querySelectorAll(".strength").forEach((b) =>
    b.addEventListener("click", () => {
      strength = Number(b.dataset.level);
      refresh();
    }),
  );
  document.querySelectorAll(".reason").forEach((b) =>
    b.addEventListener("click", () => {
      const tag = b.dataset.reason;
      if (reasons.has(tag)) reasons.delete(tag);
      else reasons.add(tag);
      refresh();
    }),
  );
  $("judgment").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("skip").addEventListener("click", skip);
  $("toggle-instructions").addEventListener("click", (e) => toggle("instructions", e.currentTarget));
  $("toggle-keys").addEventListener("click", () => toggle("keys"));

  // Keyboard.
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = e.target instanceof HTMLElement && e.target.matches("textarea, input, select");
    if (typing) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    const key = e.key.toLowerCase();
    if (key in CHOICE_KEYS) choose(CHOICE_KEYS[key]);
    else if (scale.ask_strength && STRENGTH_KEYS.slice(0, scale.strength_labels.length).includes(key)) {
      if (!decisive()) return say("Strength applies to 1 or 2.", true);
      strength = STRENGTH_KEYS.indexOf(key) + 1;
      refresh();
    } else if (key === "enter") submit();
    else if (key === "s") skip();
    else if (key === "?") toggle("keys");
    else if (key === "escape") {
      $("keys").hidden = true;
      $("instructions").hidden = true;
    } else return;
    e.preventDefault();
  });

  loadNext();
})();
