"""publish checkpoints: a publisher's durable state between the steps of one delivery.

- `publish_checkpoints`: keyed by the delivery's idempotency key, the JSON a publisher keeps
  between its network calls (a Threads container's id before it is published, a Bluesky
  record key chosen before the record is written), so a retry after a crash resumes the same
  post instead of making a second one (`Store.checkpoint` / `Store.set_checkpoint`).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "publish_checkpoints",
        sa.Column("idempotency_key", sa.String(64), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("publish_checkpoints")
