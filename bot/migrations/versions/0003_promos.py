"""promos: the host's queue of one-off, recurring and evergreen posts; posts.promo_id.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "promos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("accounts", sa.JSON),
        sa.Column("image_path", sa.Text),
        sa.Column("alt", sa.Text),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id")),
        sa.Column("rule", sa.Text),
        sa.Column("until", TS),
        sa.Column("next_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fit", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("pick", sa.String(16)),
        sa.Column("cooldown_days", sa.Integer),
        sa.Column("fired", sa.Integer, nullable=False, server_default="0"),
        sa.Column("missed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_fired_at", TS),
        sa.Column("note", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_promos_due", "promos", ["status", "next_at"])
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("promo_id", sa.Integer,
                                   sa.ForeignKey("promos.id", name="fk_posts_promo")))
        batch.add_column(sa.Column("due_at", TS))
    op.create_index("ix_posts_promo", "posts", ["promo_id"])


def downgrade() -> None:
    op.drop_index("ix_posts_promo", "posts")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("due_at")
        batch.drop_column("promo_id")
    op.drop_index("ix_promos_due", "promos")
    op.drop_table("promos")
