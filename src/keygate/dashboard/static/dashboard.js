// The dashboard's one script (CSP: script-src 'self'): copy buttons and the catalog filter.
"use strict";

function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    return false;
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  let text = button.dataset.copyText;
  if (button.dataset.copyFrom) {
    const field = document.getElementById(button.dataset.copyFrom);
    text = field.value;
    field.select();
  }
  const copied = await copyText(text);
  const label = button.textContent;
  button.textContent = copied ? "Copied" : "Selected: press Ctrl+C";
  announce(copied ? "Copied to the clipboard" : "Copying is not allowed here; the text is selected");
  setTimeout(() => { button.textContent = label; }, 2000);
});

function filterChoices(box) {
  const needle = box.value.trim().toLowerCase();
  const list = document.getElementById(box.dataset.filter);
  let shown = 0;
  for (const choice of list.querySelectorAll("[data-search]")) {
    const match = !needle || choice.dataset.search.includes(needle);
    choice.hidden = !match;
    if (match) shown += 1;
  }
  return shown;
}

document.addEventListener("input", (event) => {
  const box = event.target.closest("input[data-filter]");
  if (!box) return;
  announce(filterChoices(box) + " app(s) shown");
});

// New connection: offer only the methods of the chosen app (the server checks them anyway).
function offerMethods() {
  const chosen = document.querySelector("input[name=app]:checked");
  if (!chosen) return;
  const supported = chosen.dataset.methods.split(" ");
  for (const choice of document.querySelectorAll("[data-method]")) {
    const method = choice.dataset.method;
    const offered = !method || supported.includes(method);
    choice.hidden = !offered;
    const input = choice.querySelector("input");
    if (!offered && input.checked) {
      input.checked = false;
      document.getElementById("method-default").checked = true;
    }
  }
}

document.addEventListener("change", (event) => {
  if (event.target.matches("input[name=app]")) offerMethods();
});
// Text typed (or restored by the browser) before this script ran is applied too.
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input[data-filter]")) filterChoices(box);
  offerMethods();
});
