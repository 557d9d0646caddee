// Page-wide accessibility help, loaded on every page (the pages work without it).
(function () {
  "use strict";

  // After a failed submit, take the focus to the error summary, so screen readers announce it and keyboards start
  // there; a link in it focuses its field (a plain fragment link would only scroll) with the field's label in view.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      if (!link) { return; }
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) { return; }
      if (!target.matches("input, select, textarea, button")) {
        target = target.querySelector("input, select, textarea, button") || target;
      }
      event.preventDefault();
      (target.closest(".field, fieldset") || target).scrollIntoView();
      target.focus({ preventScroll: true });
    });
  }

  // A table too wide for the screen scrolls inside its frame; the frame then takes the keyboard's focus (so arrow
  // keys can scroll it) and is named after its heading.
  function nameOf(frame) {
    var caption = frame.querySelector("caption");
    if (caption) { return caption.textContent.trim(); }
    for (var el = frame.previousElementSibling; el; el = el.previousElementSibling) {
      if (/^H[1-6]$/.test(el.tagName)) { return el.textContent.trim(); }
      var inner = el.querySelectorAll("h1, h2, h3, h4, h5, h6");
      if (inner.length) { return inner[inner.length - 1].textContent.trim(); }
    }
    return "Table";
  }
  function markScrollers() {
    document.querySelectorAll(".table-wrap:not([data-a11y-fixed])").forEach(function (frame) {
      if (frame.scrollWidth <= frame.clientWidth) { return; }
      frame.setAttribute("tabindex", "0");
      if (!frame.hasAttribute("role")) {
        frame.setAttribute("role", "region");
        frame.setAttribute("aria-label", nameOf(frame));
      }
      frame.setAttribute("data-a11y-fixed", "");
    });
  }
  markScrollers();
  window.addEventListener("resize", markScrollers);
}());
