"""notices: what the host was already told (refused credentials, a feed down), so a restart
or the next delivery does not say it again.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("since", TS, nullable=False),
        sa.Column("sent_at", TS),
    )


def downgrade() -> None:
    op.drop_table("notices")
