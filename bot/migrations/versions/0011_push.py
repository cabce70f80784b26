"""push detection: WebSub subscriptions, the podping watcher's place in the chain, and what
adaptive polling learns about a feed.

- `websub_subscriptions`: one per feed that names a hub: the hub and topic, the callback's
  random path token, the HMAC secret shared with the hub, its state (requested / active /
  unsubscribing / failed), the lease's expiry, and when the last notification came.
- `push_cursors`: where a watcher stopped (podping: the last Hive block read), so a restart
  resumes and catches up.
- `feeds.update_hint` (seconds the feed says it updates every: podcast:updateFrequency,
  sy:updatePeriod) and `feeds.release_hours` (JSON: the hours of the week the show usually
  publishes, learned from its episodes), read by the poll schedule without parsing the feed.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "websub_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feed_id", sa.Integer, nullable=False, unique=True),
        sa.Column("hub", sa.String(2048), nullable=False),
        sa.Column("topic", sa.String(2048), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),   # callback path part
        sa.Column("secret", sa.String(128), nullable=False),              # hub.secret (HMAC)
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lease_seconds", sa.Integer),
        sa.Column("expires_at", TS),
        sa.Column("requested_at", TS),
        sa.Column("verified_at", TS),
        sa.Column("last_notified_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "push_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("data", sa.JSON),
        sa.Column("updated_at", TS, nullable=False),
    )
    with op.batch_alter_table("feeds") as b:
        b.add_column(sa.Column("update_hint", sa.Integer))
        b.add_column(sa.Column("release_hours", sa.JSON))
        b.add_column(sa.Column("last_push_at", TS))
        b.add_column(sa.Column("last_push_via", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as b:
        b.drop_column("last_push_via")
        b.drop_column("last_push_at")
        b.drop_column("release_hours")
        b.drop_column("update_hint")
    op.drop_table("push_cursors")
    op.drop_table("websub_subscriptions")
