"""State the worker processes of one deployment share: CDS JWT ids and sign-in failures.

With ``alpsdx serve --workers N`` each request may reach any process, so the sign-in
throttle's failure counts live in the database instead of process memory, and so do the ids
of CDS client JWTs (replay protection) on PostgreSQL (on SQLite, a directory beside the
database file holds them: see ``Registry.record_jti``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_jti",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("exp", sa.Float(), nullable=False),
    )
    op.create_index("ix_cds_jti_exp", "cds_jti", ["exp"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("addr", sa.String(64), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["addr", "username", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("cds_jti")
