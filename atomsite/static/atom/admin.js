// The admin's small behaviours, here rather than in inline handlers the Content-Security-Policy
// refuses: a <select data-autosubmit> submits its form when changed (the language switcher, the
// consumption dashboard's shop).
"use strict";
document.addEventListener("change", function (event) {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.dataset.autosubmit !== undefined) {
    target.form.submit();
  }
});
