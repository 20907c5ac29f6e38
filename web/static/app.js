// gofunc dashboard: the little the pages do in the browser besides htmx.
// Served as a file (the Content-Security-Policy allows no inline script).
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) { return; }
  var src = document.getElementById(b.getAttribute("data-copy"));
  if (!src || !navigator.clipboard) { return; }
  navigator.clipboard.writeText(src.textContent).then(function () {
    b.textContent = "Copied";
    window.setTimeout(function () { b.textContent = "Copy as CLI"; }, 2000);
  });
});
