// DoseReg's page behaviour, kept out of the templates: the Content-Security-Policy allows no inline script.
//   data-print            a button that prints the page
//   data-autosubmit       a select that submits its form when changed
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (el) {
    el.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
});
