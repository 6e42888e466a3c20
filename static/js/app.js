// Keyboard shortcuts: "/" search, "?" help, "j"/"k" through queue rows, Enter opens.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  }
  function rows() {
    return Array.from(document.querySelectorAll("table[data-keyboard-rows] tbody tr"));
  }
  function select(delta) {
    const list = rows();
    if (!list.length) return;
    let i = list.findIndex((r) => r.classList.contains("row-selected"));
    if (i >= 0) list[i].classList.remove("row-selected");
    i = Math.min(Math.max(i + delta, 0), list.length - 1);
    list[i].classList.add("row-selected");
    list[i].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(document.activeElement)) return;
    if (ev.key === "/") {
      const box = document.getElementById("global-search");
      if (box) { ev.preventDefault(); box.focus(); box.select(); }
    } else if (ev.key === "?") {
      const modal = document.getElementById("shortcuts");
      if (modal && window.bootstrap) bootstrap.Modal.getOrCreateInstance(modal).show();
    } else if (ev.key === "j") {
      select(1);
    } else if (ev.key === "k") {
      select(-1);
    } else if (ev.key === "Enter") {
      const row = document.querySelector("tr.row-selected");
      const link = row && row.querySelector("a[href]");
      if (link) { ev.preventDefault(); window.location = link.href; }
    }
  });
  // Keep the CSRF header right after htmx swaps in a new page fragment.
  document.body.addEventListener("htmx:configRequest", function (ev) {
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (token && !ev.detail.headers["X-CSRFToken"]) ev.detail.headers["X-CSRFToken"] = token.value;
  });
})();
