// "Exit this page", after GOV.UK's component: the button, or Shift pressed three
// times within 5 seconds anywhere on the page (in text boxes too), hides the page at
// once and replaces it with the neutral site in the link's href. Without this file
// the button is a plain link to the same site.
(function () {
  "use strict";
  var PRESSES = 3;
  var WINDOW_MS = 5000;
  var container = document.querySelector("[data-exit-page]");
  if (!container) { return; }
  var button = container.querySelector("[data-exit-page-button]");
  var destination = button.getAttribute("href");
  var presses = 0;
  var lastKeyWasModified = false;
  var timer = null;
  var title = document.title;

  // Three lights under the button: how many presses so far (for sighted keyboard users).
  var indicator = document.createElement("div");
  indicator.className = "exit-page-indicator";
  indicator.setAttribute("aria-hidden", "true");
  for (var i = 0; i < PRESSES; i += 1) {
    indicator.appendChild(document.createElement("span"));
  }
  container.appendChild(indicator);
  // The same, said to screen readers.
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  status.setAttribute("data-exit-page-status", "");
  container.appendChild(status);

  function showPresses() {
    indicator.classList.toggle("exit-page-indicator-visible", presses > 0);
    Array.prototype.forEach.call(indicator.children, function (light, index) {
      light.classList.toggle("exit-page-light-on", index < presses);
    });
  }

  function forgetPresses() {
    presses = 0;
    window.clearTimeout(timer);
    timer = null;
    showPresses();
  }

  // Nothing the person typed stays in the page: a browser that keeps the page in its
  // back/forward cache, or restores form fields on Back, has nothing to show.
  function clearAnswers() {
    document.querySelectorAll("input, textarea, select").forEach(function (field) {
      if (field.type === "hidden" || field.type === "submit" || field.type === "button") { return; }
      if (field.type === "checkbox" || field.type === "radio") {
        field.checked = false;
      } else if (field.tagName === "SELECT") {
        field.selectedIndex = 0;
      } else {
        field.value = "";
      }
    });
  }

  // Back to an earlier page of the form after an exit: the browser would put back what
  // was typed there (form state restoration), though the portal has forgotten it. Until
  // the person sends a form again, every page shows only what the portal sent.
  var EXITED = "exit-this-page";
  function remember(exited) {
    try {
      if (exited) { window.sessionStorage.setItem(EXITED, "1"); } else { window.sessionStorage.removeItem(EXITED); }
    } catch (error) { /* storage off: nothing to remember with */ }
  }
  function exitedBefore() {
    try { return window.sessionStorage.getItem(EXITED) === "1"; } catch (error) { return false; }
  }
  function forgetRestoredAnswers() {
    if (exitedBefore()) { document.querySelectorAll("form").forEach(function (form) { form.reset(); }); }
  }
  forgetRestoredAnswers();
  document.addEventListener("submit", function () { remember(false); });

  // The words it says come from the page, in the page's language.
  function say(name, fallback) { return container.getAttribute("data-text-" + name) || fallback; }

  function exitPage() {
    forgetPresses();
    var overlay = document.createElement("div");
    overlay.className = "exit-page-overlay";
    overlay.setAttribute("data-exit-page-overlay", "");
    document.body.appendChild(overlay);
    document.body.classList.add("exit-page-leaving");
    document.title = say("loading", "Loading");
    status.textContent = say("loading", "Loading") + ".";
    clearAnswers();
    remember(true);
    // Ask the portal to forget this browser's answers (the session cookie), so that
    // Back to an earlier page of the form shows it empty. A beacon outlives the page.
    var forget = container.getAttribute("data-exit-page-forget");
    if (forget && navigator.sendBeacon) { navigator.sendBeacon(forget); }
    // replace(), not a link: this page leaves the tab's history, so Back skips it.
    window.location.replace(destination);
  }

  button.addEventListener("click", function (event) {
    event.preventDefault();
    exitPage();
  });

  // Counted on keyup, as GOV.UK does; Shift held to type a capital letter doesn't count.
  document.addEventListener("keyup", function (event) {
    if (event.key === "Shift" && !lastKeyWasModified) {
      presses += 1;
      showPresses();
      if (presses >= PRESSES) {
        exitPage();
      } else {
        status.textContent = presses === 1 ? say("two-more", "Shift, press 2 more times to exit.")
          : say("one-more", "Shift, press 1 more time to exit.");
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          forgetPresses();
          status.textContent = say("expired", "Exit this page expired.");
        }, WINDOW_MS);
      }
    } else if (event.key !== "Shift") {
      forgetPresses();
    }
    lastKeyWasModified = event.shiftKey;
  }, true);

  // Back to this page from the back/forward cache (a browser that kept it): show it
  // again rather than a blank overlay.
  window.addEventListener("pageshow", function (event) {
    forgetRestoredAnswers();
    if (!event.persisted) { return; }
    document.querySelectorAll("[data-exit-page-overlay]").forEach(function (overlay) { overlay.remove(); });
    document.body.classList.remove("exit-page-leaving");
    document.title = title;
    status.textContent = "";
  });
}());
