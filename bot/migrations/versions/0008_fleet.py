"""the fleet's poll index: what a worker needs to poll a feed without loading its show.

- `feeds.poll_interval`: the show's poll interval in seconds, written when the registry is
  synced or a show imported, so an unchanged poll is handled from the feed's row alone;
- `feeds.active`: false for a feed no show polls any more (a removed show, a feed URL
  changed); its history stays, no worker claims it;
- `ix_feeds_new` (id) over the active feeds never polled, `ix_feeds_due` (next_poll_at, id)
  over the active feeds: the claim of due feeds reads them in their own order and stops after
  a batch (no sort of every feed);
- `ix_episodes_due` (status, published_at): scheduled episodes whose date has come, found
  across every show in one indexed query;
- `ix_shows_updated` (updated_at): the shows changed since a worker last looked.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite allows it with a default): no table copy, no FK trouble
    op.add_column("feeds", sa.Column("poll_interval", sa.Integer))
    op.add_column("feeds", sa.Column("active", sa.Boolean, nullable=False,
                                     server_default=sa.true()))
    op.create_index("ix_feeds_new", "feeds", ["id"],
                    postgresql_where=sa.text("active AND next_poll_at IS NULL"),
                    sqlite_where=sa.text("active AND next_poll_at IS NULL"))
    op.create_index("ix_feeds_due", "feeds", ["next_poll_at", "id"],
                    postgresql_where=sa.text("active"), sqlite_where=sa.text("active"))
    op.create_index("ix_episodes_due", "episodes", ["status", "published_at"])
    op.create_index("ix_shows_updated", "shows", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_shows_updated", "shows")
    op.drop_index("ix_episodes_due", "episodes")
    op.drop_index("ix_feeds_due", "feeds")
    op.drop_index("ix_feeds_new", "feeds")
    with op.batch_alter_table("feeds") as b:
        b.drop_column("active")
        b.drop_column("poll_interval")
