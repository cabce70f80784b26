"""shows: the show registry; every feed, promo, community post, post and delivery belongs to
one show (`show_id`). An existing database's rows go to one show made for the single-show
config it was used with (its slug is set when that config is first synced, bot/shows.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
SCOPED = ("feeds", "promos", "community_posts", "posts", "deliveries")
LEGACY_SLUG = "show"  # the migrated show's slug until the config names it (bot/shows.py)


def upgrade() -> None:
    op.create_table(
        "shows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),      # config | import
        sa.Column("path", sa.Text),                               # the file it came from
        sa.Column("content_hash", sa.String(64)),                 # None: made by this migration
        sa.Column("config", sa.Text),                             # import: the file's TOML
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("removed_at", TS),
    )
    for table in SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("show_id", sa.Integer))
        op.create_index(f"ix_{table}_show_id", table, ["show_id"])
    conn = op.get_bind()
    used = any(conn.execute(sa.text(f"SELECT 1 FROM {t} LIMIT 1")).first() for t in SCOPED)
    if not used:
        return
    name = conn.execute(sa.text("SELECT title FROM feeds WHERE title IS NOT NULL "
                                "ORDER BY id LIMIT 1")).scalar() or LEGACY_SLUG
    conn.execute(sa.text("INSERT INTO shows (slug, name, source, created_at, updated_at) "
                         "VALUES (:slug, :name, 'config', CURRENT_TIMESTAMP, "
                         "CURRENT_TIMESTAMP)"), {"slug": LEGACY_SLUG, "name": name})
    sid = conn.execute(sa.text("SELECT id FROM shows WHERE slug = :s"),
                       {"s": LEGACY_SLUG}).scalar()
    for table in SCOPED:
        conn.execute(sa.text(f"UPDATE {table} SET show_id = :sid"), {"sid": sid})


def downgrade() -> None:
    for table in SCOPED:
        op.drop_index(f"ix_{table}_show_id", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("show_id")
    op.drop_table("shows")
