// Progressive enhancements only: every page works without this script.
(function () {
  "use strict";
  var root = document.documentElement;
  var saved = localStorage.getItem("bugbane-theme");
  if (saved) root.setAttribute("data-theme", saved);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-theme-toggle]").forEach(function (b) {
      b.addEventListener("click", function () {
        var dark = root.getAttribute("data-theme") === "dark" ||
          (!root.getAttribute("data-theme") && matchMedia("(prefers-color-scheme: dark)").matches);
        var next = dark ? "light" : "dark";
        root.setAttribute("data-theme", next);
        localStorage.setItem("bugbane-theme", next);
      });
    });

    document.querySelectorAll("[data-confirm]").forEach(function (b) {
      b.addEventListener("click", function (e) {
        if (!confirm(b.getAttribute("data-confirm"))) e.preventDefault();
      });
    });

    document.querySelectorAll("[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });

    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      all.addEventListener("change", function () {
        all.form.querySelectorAll("input[name=id]").forEach(function (c) { c.checked = all.checked; });
      });
    });

    document.querySelectorAll("[data-toggle-system]").forEach(function (b) {
      var label = b.textContent;
      b.addEventListener("click", function () {
        var stack = b.closest("[data-stack]");
        var hidden = stack.classList.toggle("app-only");
        b.textContent = hidden ? label : "Hide system frames";
      });
    });

    // j/k to move through the issue list, Enter to open, x to select, / to search.
    var rows = Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-list] tbody tr"));
    var search = document.querySelector("[data-search]");
    var at = -1;
    function mark(i) {
      if (!rows.length) return;
      if (at >= 0) rows[at].classList.remove("selected");
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows[at].classList.add("selected");
      rows[at].scrollIntoView({ block: "nearest" });
    }
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      if (e.metaKey || e.ctrlKey || e.altKey) return;
      if (e.key === "/" && search) { e.preventDefault(); search.focus(); search.select(); }
      else if (e.key === "j") mark(at + 1);
      else if (e.key === "k") mark(at - 1);
      else if (e.key === "Enter" && at >= 0) location.href = rows[at].getAttribute("data-href");
      else if (e.key === "x" && at >= 0) {
        var c = rows[at].querySelector("input[type=checkbox]");
        if (c) c.checked = !c.checked;
      }
    });
  });
})();
