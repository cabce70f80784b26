"""web: the control room's users, their shows, API tokens, sessions and login attempts, and
the accounts connected from the web app (tokens encrypted) with the OAuth state they need.

- `users` (name, argon2 `password_hash`, `role` host | cohost) and `user_shows` (the shows a
  user may see; none: every show);
- `api_tokens`: a token is stored as its sha256 (`token_hash`), shown once when made;
- `web_sessions`: a browser session, keyed by the sha256 of its cookie, with its CSRF token;
- `login_attempts`: failed logins by user name and by client address (rate limit);
- `connected_accounts`: an account's secret connected in the web app, Fernet-encrypted with
  CRIER_SECRET_KEY (`secret_enc`); the environment still wins for its account;
- `oauth_apps`: crier registered as an app on a Mastodon instance (client secret encrypted);
- `oauth_pending`: an OAuth authorization under way (state, PKCE verifier encrypted).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "user_shows",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("show_id", sa.Integer, primary_key=True),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("label", sa.String(200)),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Index("ix_login_attempts_key_at", "key", "at"),
    )
    op.create_table(
        "connected_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("show_id", sa.Integer, index=True),
        sa.Column("account", sa.String(100), nullable=False, unique=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("instance", sa.Text),
        sa.Column("username", sa.Text),
        sa.Column("secret_enc", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("verified_at", TS),
    )
    op.create_table(
        "oauth_apps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("instance", sa.String(400), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("client_secret_enc", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("instance", "redirect_uri", name="uq_oauth_apps_instance_redirect"),
    )
    op.create_table(
        "oauth_pending",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("show_id", sa.Integer),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("instance", sa.String(400), nullable=False),
        sa.Column("verifier_enc", sa.Text, nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for t in ("oauth_pending", "oauth_apps", "connected_accounts", "login_attempts",
              "web_sessions", "api_tokens", "user_shows", "users"):
        op.drop_table(t)
