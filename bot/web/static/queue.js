// crier's queue pages: the promo form's live preview (the server composes the post for every
// account as `crier queue add --dry-run` does: POST …/queue/preview returns the cards as HTML)
// and the calendar's drag and drop (a one-off post dropped on another day keeps its time:
// PATCH /api/v1/shows/{slug}/queue/{id} {at}, as `crier queue edit ID --at WHEN`). Without JavaScript the form
// still posts and the calendar's Edit links still work.
"use strict";
(function () {
  const DELAY = 250;  // ms after the last keystroke

  function imageData(input, done) {
    const file = input && input.files && input.files[0];
    if (!file) { done(null); return; }
    const reader = new FileReader();
    reader.onload = () => done(reader.result);
    reader.onerror = () => done(null);
    reader.readAsDataURL(file);
  }

  function livePreview(form) {
    const target = document.getElementById("preview");
    const url = form.dataset.previewUrl;
    let timer = null, seq = 0;
    async function refresh() {
      const mine = ++seq;
      const res = await fetch(url, { method: "POST", body: new FormData(form),
                                     credentials: "same-origin",
                                     headers: { "X-CSRF-Token": window.crier.csrf() } });
      if (mine !== seq || !res.ok) return;
      target.innerHTML = await res.text();
      target.dataset.updated = String(mine);
      imageData(form.querySelector('input[type="file"]'), (src) => {
        const shown = src || form.dataset.imageUrl;
        if (!shown) return;
        target.querySelectorAll("img[data-preview-image]").forEach((img) => { img.src = shown; });
      });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, DELAY);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    refresh();
  }

  function calendarDrag(grid) {
    let dragged = null;
    grid.addEventListener("dragstart", (ev) => {
      const li = ev.target.closest("[data-promo]");
      if (!li) return;
      dragged = li;
      ev.dataTransfer.setData("text/plain", li.dataset.promo);
      ev.dataTransfer.effectAllowed = "move";
    });
    grid.addEventListener("dragover", (ev) => {
      if (dragged && ev.target.closest("[data-date]")) ev.preventDefault();
    });
    grid.addEventListener("drop", async (ev) => {
      const day = ev.target.closest("[data-date]");
      if (!dragged || !day) return;
      ev.preventDefault();
      const at = day.dataset.date + " " + dragged.dataset.time;
      const url = grid.dataset.apiUrl.replace("ID", dragged.dataset.promo);
      dragged = null;
      // the JSON API, as a script would: PATCH …/queue/{id} {at} (crier queue edit ID --at)
      const res = await window.crier.api("PATCH", url, { at });
      if (res.ok) {
        window.location.href = grid.dataset.calendarUrl + encodeURIComponent(day.dataset.date);
        return;
      }
      const data = res.data || {};
      const note = document.getElementById("cal-message");
      note.textContent = data.detail || ("Could not move it (" + res.status + ")");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("promo-form");
    if (form) livePreview(form);
    const grid = document.querySelector(".cal[data-api-url]");
    if (grid) calendarDrag(grid);
  });
})();
