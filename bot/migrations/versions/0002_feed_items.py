"""feed_items: the items of a feed as the last changed poll read them, by digest.

Lets a changed poll skip every item whose bytes did not change (see bot/feed.py, "unchanged
items, known by their bytes"). A cache: deleting its rows costs one slower poll, nothing else.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_items",
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("digest", sa.String(32), primary_key=True),
        sa.Column("episode_id", sa.Integer,
                  sa.ForeignKey("episodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_items")
