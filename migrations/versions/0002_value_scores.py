"""value scores

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:19:18.210275
"""
from alembic import op
import sqlalchemy as sa



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('value_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('model', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('customer_count', sa.Integer(), nullable=False),
    sa.Column('fit', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('value_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_value_runs_as_of'), ['as_of'], unique=False)

    op.create_table('customer_scores',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('recency_days', sa.Float(), nullable=True),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('monetary', sa.Float(), nullable=True),
    sa.Column('rfm_r', sa.Integer(), nullable=True),
    sa.Column('rfm_f', sa.Integer(), nullable=True),
    sa.Column('rfm_m', sa.Integer(), nullable=True),
    sa.Column('rfm_cell', sa.String(length=5), nullable=True),
    sa.Column('revenue_12m', sa.Float(), nullable=False),
    sa.Column('margin_12m', sa.Float(), nullable=True),
    sa.Column('service_cost_12m', sa.Float(), nullable=False),
    sa.Column('profit_12m', sa.Float(), nullable=True),
    sa.Column('growth_90d', sa.Float(), nullable=True),
    sa.Column('growth_yoy', sa.Float(), nullable=True),
    sa.Column('p_alive', sa.Float(), nullable=True),
    sa.Column('expected_orders_90d', sa.Float(), nullable=True),
    sa.Column('expected_spend', sa.Float(), nullable=True),
    sa.Column('clv', sa.Float(), nullable=True),
    sa.Column('seasonal_auto', sa.Boolean(), nullable=False),
    sa.Column('usual_gap_days', sa.Float(), nullable=True),
    sa.Column('referred_revenue_12m', sa.Float(), nullable=False),
    sa.Column('referred_profit_12m', sa.Float(), nullable=True),
    sa.Column('group_revenue_12m', sa.Float(), nullable=False),
    sa.Column('group_profit_12m', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['value_runs.id'], ),
    sa.PrimaryKeyConstraint('customer_id')
    )
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_scores_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_scores_run_id'))

    op.drop_table('customer_scores')
    with op.batch_alter_table('value_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_value_runs_as_of'))

    op.drop_table('value_runs')
