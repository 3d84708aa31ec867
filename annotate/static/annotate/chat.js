// The chat page: send a message, read both replies as they stream in (one JSON object a line,
// from a chunked fetch), take the judgment with the labeling page's keys, and go on with the
// conversation the server signed. Model output is untrusted: it is only ever set as text
// (text nodes, textContent), never as markup.
(() => {
  "use strict";
  const app = document.getElementById("chat-app");
  if (!app) return;
  const scale = JSON.parse(document.getElementById("scale").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const STRENGTH_KEYS = ["q", "w", "e", "r", "t", "y", "u", "i", "o", "p"];
  const CHOICE_KEYS = { 1: "left", 2: "right", 3: "tie", 4: "both_bad" };
  const SIDES = ["left", "right"];
  const arena = app.dataset.mode === "arena";

  const $ = (id) => document.getElementById(id);
  const statusLine = $("status");
  const message = $("message");
  const comment = $("comment");
  const panel = $("judgment");
  const select = $("generators");
  const panelUi = window.prefloopPanel; // panel.js: the phone layout of the sticky panel
  const replyEl = { left: $("reply-left"), right: $("reply-right") };

  let state = null; // the signed conversation, from the server's last vote answer
  let turn = null; // this turn: {message, replies: {side: {text, reply, error}}, token}
  let choice = null;
  let strength = null;
  let reasons = new Set();
  let shownAt = 0;
  let judged = 0;
  let keepAllowed = true;

  document.querySelectorAll(".strength-key").forEach((el) => {
    el.textContent = STRENGTH_KEYS[Number(el.dataset.level) - 1] || "";
  });

  function say(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  // compose: writing a message; streaming: replies arriving; failed: a reply failed, Retry;
  // choose: both in, judging; voting: the judgment is on its way.
  function setPhase(phase) {
    app.dataset.phase = phase;
    $("composer").hidden = phase !== "compose";
    $("retry-row").hidden = phase !== "failed";
    // The choices show while the replies stream (disabled until both are in): the panel keeps
    // its height, and the page does not jump when they arrive.
    $("choosing").hidden = !["streaming", "choose", "voting"].includes(phase);
    document.querySelectorAll(".choice, #submit").forEach((b) => {
      b.disabled = phase !== "choose";
    });
    $("replies").hidden = phase === "compose" && !turn;
    select.disabled = state !== null || phase !== "compose";
    message.disabled = phase !== "compose";
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
    replyEl.left.classList.toggle("chosen", choice === "left");
    replyEl.right.classList.toggle("chosen", choice === "right");
    $("work").dataset.choice = choice || "";
    panelUi.setChosen(panel, choice !== null);
  }

  // A turn of the conversation as the page shows it: who, then the text (as text).
  function turnElement(role, text, who) {
    const el = document.createElement("div");
    el.className = "turn role-" + (role === "user" ? "user" : "assistant");
    const label = document.createElement("div");
    label.className = "who";
    label.textContent = who;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    el.append(label, body);
    return el;
  }

  function pendingTurns() {
    return document.querySelectorAll(".turn.pending");
  }

  function showUserMessage(text) {
    pendingTurns().forEach((el) => el.remove());
    const places = arena ? SIDES.map((s) => replyEl[s].querySelector(".history")) : [$("conversation")];
    places.forEach((place) => {
      const el = turnElement("user", text, "You");
      el.classList.add("pending");
      place.append(el);
    });
  }

  function clearSide(side) {
    turn.replies[side] = { text: "", reply: null, error: null, done: false };
    replyEl[side].querySelector(".reply-text").replaceChildren();
    sideStatus(side, "Writing…", false);
  }

  function sideStatus(side, text, isError) {
    const el = replyEl[side].querySelector(".side-status");
    el.textContent = text;
    el.classList.toggle("error", isError);
    el.classList.toggle("muted", !isError);
  }

  async function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
  }

  // The answer's lines, each a JSON event, handed on as they arrive.
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line.trim()) onEvent(JSON.parse(line));
      }
    }
    if (buffer.trim()) onEvent(JSON.parse(buffer));
  }

  function onEvent(event) {
    const side = event.side;
    if (event.type === "start") {
      state = event.state; // a new conversation's first turn: its Retry belongs to it
      select.disabled = true;
    } else if (event.type === "text") {
      turn.replies[side].text += event.text;
      replyEl[side].querySelector(".reply-text").append(document.createTextNode(event.text));
    } else if (event.type === "done") {
      turn.replies[side].reply = event.reply; // none in Arena mode: a Retry asks both again
      turn.replies[side].done = true;
      sideStatus(side, "", false);
    } else if (event.type === "error") {
      turn.replies[side].error = event.message;
      sideStatus(side, event.message, true);
    } else if (event.type === "failed") {
      turn.failed = event.message;
      if (event.keep === false) keepAllowed = false;
    } else if (event.type === "turn") {
      turn.token = event.turn;
      app.dataset.pairId = String(event.pair_id);
    }
  }

  async function send(keep = {}) {
    if (app.dataset.phase !== "compose" && app.dataset.phase !== "failed") return;
    const text = turn && app.dataset.phase === "failed" ? turn.message : message.value;
    if (!text.trim()) return say("Write a message first.", true);
    const replies = turn && app.dataset.phase === "failed" ? turn.replies : {};
    turn = { message: text, replies, token: null, failed: null };
    keepAllowed = true;
    SIDES.forEach((side) => {
      if (!(side in keep)) clearSide(side);
    });
    showUserMessage(text);
    say("");
    setPhase("streaming");
    showReplies();
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    const body = { message: text, state, mode: app.dataset.mode, generators: select.value, keep };
    try {
      const r = await post(app.dataset.turnUrl, body);
      if (!r.ok) {
        const answer = await r.json().catch(() => ({}));
        return backToCompose(answer.detail || `Not sent (HTTP ${r.status}).`);
      }
      await readEvents(r, onEvent);
    } catch (e) {
      turn.failed = turn.failed || "The connection to the server broke. Retry asks again.";
    }
    if (turn.token) return showChoices();
    SIDES.forEach((side) => {
      if (!turn.replies[side].done && !turn.replies[side].error) {
        turn.replies[side].error = "No reply.";
        sideStatus(side, "No reply.", true);
      }
    });
    say(turn.failed || "The replies stopped before they were stored. Retry asks again.", true);
    setPhase("failed");
  }

  function backToCompose(problem) {
    pendingTurns().forEach((el) => el.remove());
    turn = null;
    say(problem, true);
    setPhase("compose");
    message.focus();
  }

  function retry() {
    if (app.dataset.phase !== "failed") return;
    const keep = {};
    if (keepAllowed) {
      SIDES.forEach((side) => {
        const r = turn.replies[side];
        if (r.reply && !r.error) keep[side] = r.reply;
      });
    }
    send(keep);
  }

  // The replies' top in the upper part of the window (a phone starts at the page's top, and a
  // long conversation pushes them down), the panel below them.
  function showReplies() {
    const top = $("replies").getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.4) window.scrollTo(0, window.scrollY + top - 8);
  }

  function showChoices() {
    choice = null;
    strength = null;
    reasons = new Set();
    comment.value = "";
    say("Both replies are in: which is better?");
    setPhase("choose");
    panelUi.setOpen(panel, false);
    refresh();
    showReplies();
    shownAt = performance.now();
  }

  function openIfStrengthOwed() {
    if (scale.ask_strength && decisive() && !strength) panelUi.setOpen(panel, true);
  }

  function choose(value) {
    if (app.dataset.phase !== "choose") return;
    if (value === "tie" && !scale.allow_tie) return;
    if (value === "both_bad" && !scale.allow_both_bad) return;
    choice = value;
    if (!decisive()) strength = null;
    say("");
    refresh();
    openIfStrengthOwed();
  }

  async function vote() {
    if (app.dataset.phase !== "choose") return;
    if (!choice) return say("Choose first: 1 left, 2 right" + (scale.allow_tie ? ", 3 tie" : "") + (scale.allow_both_bad ? ", 4 both bad" : "") + ".", true);
    if (scale.ask_strength && decisive() && !strength) {
      openIfStrengthOwed();
      return say(`How much better? Press ${STRENGTH_KEYS.slice(0, scale.strength_labels.length).join(" ")}.`, true);
    }
    setPhase("voting");
    const body = {
      turn: turn.token,
      choice,
      strength: decisive() ? strength : null,
      reasons: [...reasons],
      comment: comment.value,
      time_spent_ms: Math.round(performance.now() - shownAt),
    };
    let answer = {};
    try {
      const r = await post(app.dataset.voteUrl, body);
      answer = await r.json().catch(() => ({}));
      if (!r.ok) {
        setPhase("choose");
        return say(answer.detail || `Not saved (HTTP ${r.status}).`, true);
      }
    } catch (e) {
      setPhase("choose");
      return say("Not saved: the server did not answer. Try again.", true);
    }
    goOn(answer);
  }

  // The vote is stored: the conversation takes the reply that joins it (each side's own, in
  // Arena mode), the generators are named, and the next message can be written.
  function goOn(answer) {
    state = answer.state;
    judged += 1;
    $("session-count").textContent = `${judged} turn${judged === 1 ? "" : "s"} judged`;
    pendingTurns().forEach((el) => el.classList.remove("pending"));
    const named = (side) => `${answer.reveal[side].generator} (${answer.reveal[side].model})`;
    if (arena) {
      SIDES.forEach((side, i) => {
        const name = `Model ${"AB"[i]} · ${named(side)}`;
        replyEl[side].querySelector(".side-name").textContent = name;
        replyEl[side].querySelector(".history").append(turnElement("assistant", turn.replies[side].text, name));
      });
      say(`Stored. Model A is ${named("left")}, model B is ${named("right")}.`);
    } else {
      const joined = answer.joined;
      $("conversation").append(turnElement("assistant", turn.replies[joined].text, `Assistant · ${answer.reveal[joined].generator}`));
      say(`Stored. Left was ${named("left")}, right was ${named("right")}; the ${joined} reply joined the conversation.`);
    }
    SIDES.forEach((side) => {
      replyEl[side].querySelector(".reply-text").replaceChildren();
      sideStatus(side, "", false);
    });
    turn = null;
    choice = null;
    refresh();
    message.value = "";
    setPhase("compose");
    $("replies").hidden = !arena;
    message.focus();
  }

  function newConversation() {
    if (app.dataset.phase === "streaming" || app.dataset.phase === "voting") return;
    state = null;
    turn = null;
    choice = null;
    $("conversation").replaceChildren();
    SIDES.forEach((side, i) => {
      replyEl[side].querySelector(".history").replaceChildren();
      replyEl[side].querySelector(".reply-text").replaceChildren();
      replyEl[side].querySelector(".side-name").textContent = arena ? `Model ${"AB"[i]}` : side === "left" ? "Left" : "Right";
      sideStatus(side, "", false);
    });
    refresh();
    say("");
    setPhase("compose");
    message.focus();
  }

  function toggle(id, button) {
    const el = $(id);
    el.hidden = !el.hidden;
    if (button) button.setAttribute("aria-expanded", String(!el.hidden));
  }

  // Mouse and touch.
  $("send").addEventListener("click", () => send());
  $("retry").addEventListener("click", retry);
  $("edit-message").addEventListener("click", () => {
    const text = turn ? turn.message : "";
    backToCompose("");
    message.value = text;
  });
  $("new-conversation").addEventListener("click", newConversation);
  document.querySelectorAll(".choice").forEach((b) => b.addEventListener("click", () => choose(b.dataset.choice)));
  replyEl.left.addEventListener("dblclick", () => choose("left"));
  replyEl.right.addEventListener("dblclick", () => choose("right"));
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
  panel.addEventListener("submit", (e) => {
    e.preventDefault();
    vote();
  });
  $("toggle-instructions").addEventListener("click", (e) => toggle("instructions", e.currentTarget));
  $("toggle-keys").addEventListener("click", () => toggle("keys"));

  // Keyboard: Enter sends from the message box; elsewhere the labeling page's keys.
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = e.target instanceof HTMLElement && e.target.matches("textarea, input, select");
    if (typing) {
      if (e.target === message && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send();
      } else if (e.key === "Escape") e.target.blur();
      return;
    }
    const key = e.key.toLowerCase();
    const phase = app.dataset.phase;
    if (phase === "choose" && key in CHOICE_KEYS) choose(CHOICE_KEYS[key]);
    else if (phase === "choose" && scale.ask_strength && STRENGTH_KEYS.slice(0, scale.strength_labels.length).includes(key)) {
      if (!decisive()) return say("Strength applies to 1 or 2.", true);
      strength = STRENGTH_KEYS.indexOf(key) + 1;
      refresh();
    } else if (phase === "choose" && key === "enter") vote();
    else if (phase === "failed" && key === "r") retry();
    else if (key === "?") toggle("keys");
    else if (phase === "compose" && (key === "enter" || e.key.length === 1)) {
      // Typing anywhere writes the message: the key's character follows the focus.
      message.focus();
      if (key !== "enter") return;
    }
    else if (key === "escape") {
      $("keys").hidden = true;
      $("instructions").hidden = true;
    } else return;
    e.preventDefault();
  });

  setPhase("compose");
  refresh();
  message.focus();
  app.dataset.ready = "1";
})();
