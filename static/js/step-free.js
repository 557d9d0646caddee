// Someone who asked for step-free access is told beside each rank, as they choose, that a host without it will never
// be theirs (the assigner does not place them there). The server says the same whenever it shows the form.
(function () {
  "use strict";
  var ranking = document.querySelector("[data-step-free-ranking]");
  if (!ranking) { return; }
  var hosts = JSON.parse(ranking.getAttribute("data-not-step-free") || "{}");
  var need = document.querySelector("input[name='accessibility_needs'][value='step_free']");

  function needsStepFree() {
    return Boolean(need && need.checked);
  }

  function describe(select, id, on) {
    var ids = (select.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (t) {
      return t && t !== id;
    });
    if (on) { ids.push(id); }
    if (ids.length) { select.setAttribute("aria-describedby", ids.join(" ")); } else { select.removeAttribute("aria-describedby"); }
  }

  function update() {
    ranking.querySelectorAll("select").forEach(function (select) {
      var field = select.closest(".field");
      var id = select.id + "-hint";
      var hint = document.getElementById(id);
      var name = needsStepFree() ? hosts[select.value] : null;
      if (!name) {
        if (hint) { hint.remove(); }
        field.classList.remove("has-warning");
        describe(select, id, false);
        return;
      }
      if (!hint) {
        hint = document.createElement("p");
        hint.className = "hint";
        hint.id = id;
        select.insertAdjacentElement("afterend", hint);
      }
      hint.textContent = name + " does not have step-free access, so you will not be placed there. " +
        "Choose another host for this rank.";
      field.classList.add("has-warning");
      describe(select, id, true);
    });
  }

  ranking.addEventListener("change", update);
  if (need) { need.addEventListener("change", update); }
}());
