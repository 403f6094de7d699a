/* The users list's bulk actions: removing access asks R4's question once, with the number of
   users beside it (docs/rules.md R4); without JavaScript the server asks on a page instead. */
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form || form.id !== "bulk-form") {
    return;
  }
  var action = form.querySelector("[name=action]:checked");
  var confirmed = form.querySelector("[name=confirmed]");
  if (!action || action.value !== "remove_access" || !confirmed) {
    return;
  }
  var selectAll = form.querySelector("[name=select_all]");
  var count;
  if (selectAll && selectAll.checked) {
    if (form.dataset.more === "yes") {
      confirmed.value = "";  /* more than the list counts: the server counts and asks */
      return;
    }
    count = parseInt(form.dataset.matching, 10) || 0;
  } else {
    count = document.querySelectorAll("input[name=user][form=bulk-form]:checked").length;
  }
  if (count === 0) {
    confirmed.value = "";  /* the server says to select someone */
    return;
  }
  var question = form.dataset.question + " (" + count + (count === 1 ? " user)" : " users)");
  if (window.confirm(question)) {
    confirmed.value = "yes";
  } else {
    event.preventDefault();
  }
});
