/* Claims Portal Console: the little JavaScript there is (no inline scripts; strict CSP). */
"use strict";

/* Controls that only a browser without JavaScript needs are hidden by CSS once this runs. */
document.documentElement.classList.add("js");

/*
 * hx-confirm on a checkbox: the browser has already toggled it when htmx asks.  Ask with the
 * same native confirm() htmx would use, and on Cancel put the checkbox back as it was, so
 * the page never shows a state the server does not have.
 */
document.addEventListener("htmx:confirm", function (event) {
  var question = event.detail.question;
  if (!question) {
    return;
  }
  event.preventDefault();
  if (window.confirm(question)) {
    event.detail.issueRequest(true);
  } else if (event.detail.elt && event.detail.elt.type === "checkbox") {
    event.detail.elt.checked = !event.detail.elt.checked;
  }
});

/*
 * GOV.UK error summary pattern: when a page comes back with problems, move focus to the
 * summary so keyboard and screen reader users start there (its links lead to each field).
 */
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  }
});
