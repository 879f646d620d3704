"""Observation.tcrab_gated, and an ``extra`` JSON column on every patient item table.

``extra`` keeps model fields that have no column of their own (e.g. an observation's
``reference_range``, later additions to the case format), so a case round-trips through
the registry losslessly even when the model grows before the schema does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ITEM_TABLES = ("observations", "variants", "apoptosis_assays", "medications")


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("tcrab_gated", sa.Boolean(), nullable=True))
    for table in ITEM_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ITEM_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("extra")
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("tcrab_gated")
