"""the whole customer: surveys, opportunities, invoices, product categories, payment terms and credit, consent, privacy audit

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa



revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('privacy_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_by', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('privacy_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_audit_customer_id'), ['customer_id'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.Date(), nullable=False),
    sa.Column('due_at', sa.Date(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('paid_at', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_customer_issued', ['customer_id', 'issued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_external_id'), ['external_id'], unique=True)

    op.create_table('opportunities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('owner_rep_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', sa.Date(), nullable=False),
    sa.Column('stage', sa.String(length=50), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('expected_close_on', sa.Date(), nullable=True),
    sa.Column('closed_at', sa.Date(), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['owner_rep_id'], ['sales_reps.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index('ix_opportunities_customer_opened', ['customer_id', 'opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_external_id'), ['external_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_opportunities_owner_rep_id'), ['owner_rep_id'], unique=False)

    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('answered_at', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('channel', sa.String(length=50), nullable=True),
    sa.Column('comment', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.create_index('ix_surveys_customer_answered', ['customer_id', 'answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_external_id'), ['external_id'], unique=True)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_terms_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('credit_grade', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('credit_limit', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('consent', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('consent_at', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_products_category'), ['category'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_category'))
        batch_op.drop_column('category')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('consent_at')
        batch_op.drop_column('consent')
        batch_op.drop_column('credit_limit')
        batch_op.drop_column('credit_grade')
        batch_op.drop_column('payment_terms_days')

    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_external_id'))
        batch_op.drop_index('ix_surveys_customer_answered')

    op.drop_table('surveys')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunities_owner_rep_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_external_id'))
        batch_op.drop_index('ix_opportunities_customer_opened')

    op.drop_table('opportunities')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_external_id'))
        batch_op.drop_index('ix_invoices_customer_issued')

    op.drop_table('invoices')
    with op.batch_alter_table('privacy_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_audit_customer_id'))

    op.drop_table('privacy_audit')

