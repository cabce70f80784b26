"""Initial schema: feeds, episodes and their identity keys, posts, deliveries, locks.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False, unique=True),
        sa.Column("title", sa.Text),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("body_hash", sa.String(64)),
        sa.Column("redirect_url", sa.String(2048)),
        sa.Column("baseline_done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_poll_at", TS),
        sa.Column("last_ok_at", TS),
        sa.Column("last_result", sa.String(32)),
        sa.Column("last_error", sa.Text),
        sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_poll_at", TS),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "episodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("guid", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("published_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("announced_at", TS),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_episodes_feed_status", "episodes", ["feed_id", "status"])
    op.create_table(
        "episode_keys",
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id")),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("payload", sa.JSON),
        sa.Column("length", sa.Integer),
        sa.Column("limit", sa.Integer),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("needs_check", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("first_attempt_at", TS),
        sa.Column("claimed_at", TS),
        sa.Column("claim_token", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("error_kind", sa.String(16)),
        sa.Column("remote_id", sa.String(100)),
        sa.Column("remote_url", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.UniqueConstraint("post_id", "account", name="uq_delivery_post_account"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    for t in ("locks", "deliveries", "posts", "episode_keys", "episodes", "feeds"):
        op.drop_table(t)
