"""community_posts: the listener community's posts proposed for a boost, and the decisions.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "community_posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("status_id", sa.String(100), nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("author", sa.String(400), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("via", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("found_at", TS, nullable=False),
        sa.Column("decided_at", TS),
        sa.UniqueConstraint("account", "uri", name="uq_community_account_uri"),
    )


def downgrade() -> None:
    op.drop_table("community_posts")
