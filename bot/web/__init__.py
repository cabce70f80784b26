"""The host's control room: a FastAPI app (pages from Jinja2 templates, a JSON API under
them, documented by OpenAPI at /api/v1/openapi.json), served by `crier web` or `crier run --web`.

- `app`: `create_app(...)`, the security headers (a strict Content-Security-Policy) and the
  per-app state (`WebState`: the store, the config, the clock, a Service per show);
- `auth`: who is asking (session cookie + CSRF token, or `Authorization: Bearer`), login and
  logout;
- `api`: the JSON API; `pages`: the HTML pages (they call the same application functions).

An entry point: it holds no business rules; bot.users, bot.promos, bot.listeners ... do.
"""
