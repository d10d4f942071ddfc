// Wide tables scroll sideways inside their own box instead of widening the page (phones keep every dose column):
// each table not already in a .tablewrap is wrapped in one; the first column stays in view (.sticky-first).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("main table").forEach(function (table) {
    if (table.closest(".tablewrap") || table.classList.contains("kv") || table.classList.contains("sheet-values")) {
      return;
    }
    var wrap = document.createElement("div");
    wrap.className = "tablewrap sticky-first";
    table.parentNode.insertBefore(wrap, table);
    wrap.appendChild(table);
  });
});
