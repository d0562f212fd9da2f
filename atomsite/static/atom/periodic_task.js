// django-celery-beat's periodic task form: shows the chosen crontab in words under its help
// (the package's own inline script, moved here for the Content-Security-Policy).
"use strict";
(function ($) {
  const script = document.getElementById("periodic-task-overrides");
  const readableCrontabs = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const originalHelp = script.dataset.crontabHelp;
  $(function () {
    $(".field-crontab_translation").hide();
    $(".field-crontab").change(function () {
      const help = $("<div>").text(originalHelp).html();
      const words = $("<div>").text(readableCrontabs[$("#id_crontab").val()] || "").html();
      $(".field-crontab .help").html(help + "<br/>Translation: " + words);
    });
  });
})(django.jQuery);
