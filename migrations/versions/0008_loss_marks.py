"""loss marks: customers marked lost by hand (with a reason) and reactivated (with a note)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'loss_marks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('marked_on', sa.Date(), nullable=False),
        sa.Column('text', sa.String(length=2000), nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_by', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_loss_marks_customer_marked_on', 'loss_marks', ['customer_id', 'marked_on'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_loss_marks_customer_marked_on', table_name='loss_marks')
    op.drop_table('loss_marks')
