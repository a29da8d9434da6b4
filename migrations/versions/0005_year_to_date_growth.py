"""year to date growth

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 00:33:33.234621
"""
from alembic import op
import sqlalchemy as sa



revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('growth_ytd', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.drop_column('growth_ytd')

