"""jobs: publish / rollback run as background jobs with state, progress and result

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('slot', sa.String(length=20), nullable=True),
        sa.Column('rule_set_id', sa.Integer(), nullable=True),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=True),
        sa.Column('evaluated_customers', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(['rule_set_id'], ['rule_sets.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_jobs_state'), 'jobs', ['state'], unique=False)
    op.create_index(op.f('ix_jobs_slot'), 'jobs', ['slot'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_jobs_slot'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_state'), table_name='jobs')
    op.drop_table('jobs')
