// crier's control room: the CSRF token on every JSON call the pages make (fetch wrapper).
"use strict";
window.crier = {
  csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  },
  async api(method, path, body) {
    const opts = { method, headers: { "X-CSRF-Token": this.csrf(), "Accept": "application/json" },
                   credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    const data = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
    return { ok: res.ok, status: res.status, data };
  },
};
