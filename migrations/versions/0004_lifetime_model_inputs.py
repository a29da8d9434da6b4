"""lifetime model inputs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 23:43:05.891110
"""
from alembic import op
import sqlalchemy as sa



revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repeat_purchases', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('recency_weeks', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('age_weeks', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.drop_column('age_weeks')
        batch_op.drop_column('recency_weeks')
        batch_op.drop_column('repeat_purchases')
