"""item_caches: each feed's items as the last changed poll read them, by digest; an index
for a feed's newest episodes.

Lets a changed poll skip every item whose bytes did not change (see bot/feed.py, "unchanged
items, known by their bytes"). A cache: deleting its row costs one slower poll, nothing else.

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
        "item_caches",
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_episodes_feed_published", "episodes", ["feed_id", "published_at"])


def downgrade() -> None:
    op.drop_index("ix_episodes_feed_published", "episodes")
    op.drop_table("item_caches")
