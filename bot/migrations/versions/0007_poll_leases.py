"""poll leases: the worker polling a feed (PostgreSQL runs many workers), and until when.

A worker claims due feeds by setting `poll_owner` and `poll_lease_until` (SELECT … FOR UPDATE
SKIP LOCKED) and clears them after the poll; a lease that ran out (the worker died) makes the
feed claimable again.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("feeds") as b:
        b.add_column(sa.Column("poll_owner", sa.String(128)))
        b.add_column(sa.Column("poll_lease_until", TS))
    op.create_index("ix_feeds_next_poll", "feeds", ["next_poll_at"])


def downgrade() -> None:
    op.drop_index("ix_feeds_next_poll", "feeds")
    with op.batch_alter_table("feeds") as b:
        b.drop_column("poll_lease_until")
        b.drop_column("poll_owner")
