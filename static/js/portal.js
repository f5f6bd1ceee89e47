// Small progressive enhancements; every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-autofocus]");
  if (summary) { summary.focus(); }
  document.querySelectorAll("a[data-field-link]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (focusQuestion(link.hash.slice(1))) { event.preventDefault(); }
    });
  });
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      // The server is the real guard against double submits; this only calms the button.
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        window.setTimeout(function () { button.disabled = true; }, 0);
      });
    });
  });
});

// GOV.UK's error summary behaviour: the link's own jump would put the input at the
// top edge of the window with its question scrolled away, so show the question (the
// legend of a group of radios or checkboxes, or else the label) and focus the input.
function focusQuestion(id) {
  var input = document.getElementById(id);
  if (!input) { return false; }
  var question = questionOf(input);
  if (!question) { return false; }
  question.scrollIntoView();
  input.focus({ preventScroll: true });
  return true;
}

function questionOf(input) {
  var fieldset = input.closest("fieldset");
  var legend = fieldset && fieldset.querySelector("legend");
  if (legend) {
    // A long group (the time picker): its legend only if the input still shows with it.
    var distance = input.getBoundingClientRect().top - legend.getBoundingClientRect().top;
    if (distance < window.innerHeight / 2) { return legend; }
  }
  return document.querySelector('label[for="' + input.id + '"]') || legend;
}
