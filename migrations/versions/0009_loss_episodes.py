"""the stored loss history: loss episodes kept ready for reports, and what they were built from

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'loss_episodes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('lost_on', sa.Date(), nullable=False),
        sa.Column('how', sa.String(length=10), nullable=False),
        sa.Column('rule_line', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=2000), nullable=True),
        sa.Column('reactivated_on', sa.Date(), nullable=True),
        sa.Column('end_kind', sa.String(length=20), nullable=True),
        sa.Column('reactivation_note', sa.String(length=2000), nullable=True),
        sa.Column('last_order_at', sa.Date(), nullable=True),
        sa.Column('at_risk_on', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_loss_episodes_customer_lost_on', 'loss_episodes', ['customer_id', 'lost_on'], unique=False)
    op.create_index('ix_loss_episodes_lost_on', 'loss_episodes', ['lost_on'], unique=False)
    op.create_table(
        'loss_history_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rules_checksum', sa.String(length=64), nullable=False),
        sa.Column('evaluation_run_id', sa.Integer(), nullable=True),
        sa.Column('value_run_id', sa.Integer(), nullable=True),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('loss_history_state')
    op.drop_index('ix_loss_episodes_lost_on', table_name='loss_episodes')
    op.drop_index('ix_loss_episodes_customer_lost_on', table_name='loss_episodes')
    op.drop_table('loss_episodes')
