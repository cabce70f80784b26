// crier's share kit: "Copy text" buttons (shown only when the clipboard can be used).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) return;
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const label = button.firstChild.textContent;
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.firstChild.textContent = "Copied";
      } catch (e) {
        button.firstChild.textContent = "Copy failed";
      }
      setTimeout(() => { button.firstChild.textContent = label; }, 2000);
    });
  }
});
