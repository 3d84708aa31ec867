// The sticky judgment panel of the labeling pages (panel.css): its .panel-toggle button opens
// and closes the .panel-details, which only narrow screens hide. A page script calls
// prefloopPanel.setOpen(panel, open) to open them itself (a choice that needs a strength)
// or close them (a new item), and prefloopPanel.setChosen(panel, chosen) once a choice is made.
(() => {
  "use strict";
  const narrow = window.matchMedia("(max-width: 600px)");

  function setOpen(panel, open) {
    panel.toggleAttribute("data-open", open);
    panel.querySelectorAll(".panel-toggle").forEach((b) => b.setAttribute("aria-expanded", String(open)));
  }

  function setChosen(panel, chosen) {
    panel.toggleAttribute("data-chosen", chosen);
  }

  document.querySelectorAll(".sticky-panel").forEach((panel) => {
    panel.querySelectorAll(".panel-toggle").forEach((b) =>
      b.addEventListener("click", () => setOpen(panel, !panel.hasAttribute("data-open"))),
    );
  });

  window.prefloopPanel = { setOpen, setChosen, isNarrow: () => narrow.matches };
})();
