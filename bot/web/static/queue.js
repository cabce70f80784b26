// crier's queue pages, through the JSON API a script would call (window.crier.api sends the
// session's CSRF header):
// - the promo form's live preview: as the host types, POST /api/v1/shows/{slug}/preview
//   {text, episode, accounts, fit, image (a data: URL), alt} (an evergreen slot: POST
//   …/queue {dry: true, evergreen, every, ...}: nothing is queued) composes the post for every
//   account as `crier queue add --dry-run` does, and each PREVIEW is drawn as the post on its
//   network. Built with DOM APIs only (createElement, textContent): the text is untrusted and
//   is never parsed as HTML.
// - the calendar's drag and drop (a one-off post dropped on another day keeps its time):
//   PATCH /api/v1/shows/{slug}/queue/{id} {at}, as `crier queue edit ID --at WHEN`.
// Without JavaScript the form still posts (a refused one comes back with the counts) and the
// calendar's Edit links still work.
"use strict";
(function () {
  const DELAY = 250;  // ms after the last keystroke
  const EMPTY = "Type the post's text to see it as each network will show it.";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function token(s) { return String(s || "").toLowerCase().replace(/[^a-z0-9_-]/g, ""); }

  function webHref(href) { return /^https?:\/\//i.test(href || "") ? href : null; }

  function readData(blob) {
    return new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => resolve(null);
      reader.readAsDataURL(blob);
    });
  }

  // the image to send and show: the file chosen, else the one the server holds for the form
  // (a queued post's, or one uploaded with a refused form), fetched once as a data: URL
  function imageSource(form) {
    let kept = null;
    return async function () {
      const input = form.querySelector('input[type="file"]');
      const file = input && input.files && input.files[0];
      if (file) return readData(file);
      if (!form.dataset.imageUrl) return null;
      if (kept === null) {
        kept = fetch(form.dataset.imageUrl, { credentials: "same-origin" })
          .then((res) => (res.ok ? res.blob().then(readData) : null))
          .catch(() => null);
      }
      return kept;
    };
  }

  // the form as the API's body: /preview, or /queue {dry} for an evergreen slot
  function request(form, image) {
    const fd = new FormData(form);
    const text = String(fd.get("text") || "");
    const evergreen = Boolean(fd.get("evergreen"));
    if (!text.trim() && !evergreen) return null;
    const accounts = fd.getAll("accounts").map(String);
    const body = { text: text.trim() ? text : null, accounts: accounts.length ? accounts : null,
                   fit: Boolean(fd.get("fit")) };
    const episode = String(fd.get("episode") || "");
    if (image) {
      body.image = image;
      body.alt = String(fd.get("alt") || "");
    }
    if (!evergreen) {
      if (episode) body.episode = episode;
      return { url: form.dataset.apiPreview, body };
    }
    Object.assign(body, { dry: true, evergreen: true, every: String(fd.get("every") || ""),
                          until: String(fd.get("until") || "") });
    if (fd.get("pick")) body.pick = String(fd.get("pick"));
    return { url: form.dataset.apiQueue, body };
  }

  function postText(p) {
    const para = el("p", "pv-text");
    const pieces = p.segments && p.segments.length ? p.segments : [{ kind: "text", text: p.text }];
    for (const s of pieces) {
      const href = s.kind === "link" ? webHref(s.href) : null;
      if (href) {
        const a = el("a", "pv-link", s.text);
        a.href = href;
        a.rel = "noopener nofollow";
        para.append(a);
      } else if (s.kind === "mention" || s.kind === "hashtag") {
        para.append(el("span", "pv-" + s.kind, s.text));
      } else {
        para.append(document.createTextNode(String(s.text || "")));
      }
    }
    return para;
  }

  function media(p, src) {
    const figure = el("figure", "pv-media");
    const shown = src || webHref(p.image);
    if (shown) {
      const img = el("img", "pv-img");
      img.src = shown;
      img.alt = p.alt || "";
      figure.append(img);
    }
    const cap = el("figcaption");
    const altOver = p.alt_length != null && p.alt_limit != null && p.alt_length > p.alt_limit;
    cap.append(el("span", "pv-alt-badge", "ALT"), " " + (p.alt || "") + " ",
               el("span", altOver ? "bad" : "muted",
                  "(" + p.alt_length + "/" + p.alt_limit + ")"));
    figure.append(cap);
    return figure;
  }

  function card(p, src) {
    const network = p.network || p.platform;
    const name = p.display_name || p.account;
    const over = p.length > p.limit ? p.length - p.limit : 0;
    const altOver = p.alt_length != null && p.alt_limit != null && p.alt_length > p.alt_limit;
    const art = el("article", "pv-card pv-" + token(p.platform));
    if (!p.fits) art.classList.add("pv-over");
    art.setAttribute("aria-label", network + " preview for " + p.account);

    const top = el("header", "pv-top");
    const avatar = el("span", "pv-avatar", Array.from(String(name))[0] || "?");
    avatar.setAttribute("aria-hidden", "true");
    const who = el("span", "pv-who");
    who.append(el("strong", null, name), " ", el("span", "muted", "@" + p.account));
    top.append(avatar, who, el("span", "pv-net", network));
    art.append(top, postText(p));
    if (p.image) art.append(media(p, src));

    const foot = el("footer", "pv-foot");
    const count = el("span", "pv-count", p.length + "/" + p.limit);
    if (!p.fits) count.classList.add("bad");
    count.dataset.count = "";
    foot.append(count);
    if (p.x_cost) {   // X bills per post (bot.xcost)
      const cost = el("span", "pv-cost muted", "X cost " + p.x_cost);
      cost.dataset.cost = "";
      foot.append(cost);
    }
    if (over) {
      const warn = el("strong", "pv-warn bad", over + " over the limit on " + network);
      warn.setAttribute("role", "alert");
      foot.append(warn);
    }
    if (altOver) foot.append(el("strong", "pv-warn bad", "alt text too long"));
    if (p.shortened) {
      const trimmed = p.trimmed && p.trimmed.length ? ": " + p.trimmed.join("; ") : "";
      foot.append(el("span", "warn", "shortened to fit" + trimmed));
    }
    art.append(foot);

    const facts = el("dl", "pv-facts");
    const fact = (term, value) => {
      if (value) facts.append(el("dt", null, term), el("dd", null, value));
    };
    const links = (p.segments || []).filter((s) => s.kind === "link").map((s) => s.href);
    fact("Link", p.link || links[0]);   // the episode's link, or the text's first
    fact("Hashtags", (p.hashtags || []).map((t) => "#" + t).join(" "));
    fact("Mentions", (p.mentions || []).join(" "));
    fact("Episode", p.episode);
    art.append(facts);
    return art;
  }

  function livePreview(form) {
    const target = document.getElementById("preview");
    const image = imageSource(form);
    let timer = null, seq = 0;
    function show(nodes, mine) {
      target.replaceChildren(...nodes);
      target.dataset.updated = String(mine);
    }
    async function refresh() {
      const mine = ++seq;
      const src = await image();
      const req = request(form, src);
      if (mine !== seq) return;
      if (!req) { show([el("p", "muted pv-empty", EMPTY)], mine); return; }
      let res;
      try {
        res = await window.crier.api("POST", req.url, req.body);
      } catch (e) {
        res = { ok: false, status: 0, data: { detail: "Could not reach crier for the preview." } };
      }
      if (mine !== seq) return;
      const data = res.data || {};
      const nodes = [];
      if (!res.ok) {
        const why = data.detail || ("Preview failed (" + res.status + ")");
        const error = el("p", "error pv-error", why);
        error.setAttribute("role", "alert");
        nodes.push(error);
      }
      for (const p of data.previews || []) nodes.push(card(p, src));
      show(nodes, mine);
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
