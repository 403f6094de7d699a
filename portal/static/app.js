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
 * The Enabled box of a users table (console/users/_row.html): nothing is repeated on each row,
 * the tbody says where a box posts (data-enabled-url, "{id}" for the user's id) and how
 * (hx-target, hx-swap, hx-sync, hx-confirm, hx-vals, which htmx reads from the box as the
 * request's source).  The box posts the state it was changed to: enabled=true|false.
 */
document.addEventListener("change", function (event) {
  var box = event.target;
  var rows = box.closest ? box.closest("tbody[data-enabled-url]") : null;
  if (!rows || box.type !== "checkbox" || box.id.indexOf("enabled-") !== 0 || !window.htmx) {
    return;
  }
  var url = rows.getAttribute("data-enabled-url").replace("{id}", box.id.slice(8));
  window.htmx.ajax("POST", url, {
    source: box,
    values: { enabled: box.checked ? "true" : "false" },
  });
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
