// Add and remove delegate rows without a round trip; without JavaScript the "Add" button posts the form instead.
(function () {
  "use strict";
  var container = document.getElementById("delegate-rows");
  var addButton = document.getElementById("add-row");
  if (!container || !addButton) { return; }
  var max = parseInt(container.getAttribute("data-max"), 10) || 60;

  function rows() { return container.querySelectorAll("[data-row]"); }

  function renumber() {
    var all = rows();
    all.forEach(function (row, index) {
      row.querySelector("[data-number]").textContent = String(index + 1);
      row.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
        ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(/delegates-\d+-/g, "delegates-" + index + "-")); }
        });
      });
      row.querySelector("[data-remove]").hidden = all.length < 2;
    });
    addButton.disabled = all.length >= max;
  }

  addButton.addEventListener("click", function (event) {
    event.preventDefault();
    var all = rows();
    if (all.length >= max) { return; }
    var copy = all[all.length - 1].cloneNode(true);
    copy.querySelectorAll("input").forEach(function (input) { input.value = ""; input.removeAttribute("aria-invalid"); });
    copy.querySelectorAll(".error").forEach(function (el) { el.remove(); });
    copy.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    container.appendChild(copy);
    renumber();
    copy.querySelector("input").focus();
  });

  container.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove]");
    if (!button || rows().length < 2) { return; }
    button.closest("[data-row]").remove();
    renumber();
  });

  renumber();
}());
