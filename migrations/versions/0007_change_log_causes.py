"""change log: effective date, cause, rule and metrics of every change; since and next change of evaluations

Revision ID: 0007
Revises: 0006

Existing changes were all made by batch runs: their effective date is the run's as_of (exact = false), their cause
RULES (with the version) when the run used another rule set than the run before it, else TIME. A current tier's /
status's `since` is the as_of of the last logged change of it, else of the first run after the customer was
created, else the evaluation's own as_of.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

CHANGE_COLUMNS = ('effective_on', 'exact', 'cause', 'cause_record_kind', 'cause_record_external_id',
                  'cause_rule_set_version', 'rule_line', 'rule_text', 'rule_set_version', 'metrics')


def upgrade() -> None:
    bind = op.get_bind()
    same = 'IS NOT DISTINCT FROM' if bind.dialect.name == 'postgresql' else 'IS'
    with op.batch_alter_table('tier_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('effective_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('exact', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('cause', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('cause_record_kind', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('cause_record_external_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('cause_rule_set_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rule_line', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rule_text', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('rule_set_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('metrics', sa.JSON(), nullable=True))
    bind.execute(sa.text(f"""
        UPDATE tier_changes SET effective_on = as_of, exact = :no,
          rule_set_version = (SELECT rs.version FROM evaluation_runs r JOIN rule_sets rs ON rs.id = r.rule_set_id
                              WHERE r.id = tier_changes.run_id),
          cause = CASE
            WHEN run_id IS NULL THEN 'MANUAL'
            WHEN (SELECT r.rule_set_id FROM evaluation_runs r WHERE r.id = tier_changes.run_id) {same}
                 (SELECT p.rule_set_id FROM evaluation_runs p
                  WHERE p.id < tier_changes.run_id AND p.finished_at IS NOT NULL ORDER BY p.id DESC LIMIT 1)
            THEN 'TIME' ELSE 'RULES' END"""), {"no": False})
    bind.execute(sa.text("UPDATE tier_changes SET cause_rule_set_version = rule_set_version WHERE cause = 'RULES'"))
    with op.batch_alter_table('tier_changes', schema=None) as batch_op:
        batch_op.alter_column('effective_on', existing_type=sa.Date(), nullable=False)
        batch_op.alter_column('exact', existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column('cause', existing_type=sa.String(length=20), nullable=False)

    with op.batch_alter_table('customer_evaluations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_change_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('tier_since', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('status_since', sa.Date(), nullable=True))
        batch_op.alter_column('run_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_customer_evaluations_next_change_on'), ['next_change_on'],
                              unique=False)
    for kind in ('tier', 'status'):
        bind.execute(sa.text(f"""
            UPDATE customer_evaluations SET {kind}_since = COALESCE(
              (SELECT max(tc.as_of) FROM tier_changes tc
               WHERE tc.customer_id = customer_evaluations.customer_id AND tc.kind = '{kind}'),
              (SELECT min(r.as_of) FROM evaluation_runs r JOIN customers c ON c.id = customer_evaluations.customer_id
               WHERE r.finished_at IS NOT NULL AND r.as_of >= c.created_at AND r.as_of <= customer_evaluations.as_of),
              as_of)"""))


def downgrade() -> None:
    with op.batch_alter_table('customer_evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_evaluations_next_change_on'))
        batch_op.alter_column('run_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('status_since')
        batch_op.drop_column('tier_since')
        batch_op.drop_column('next_change_on')
    with op.batch_alter_table('tier_changes', schema=None) as batch_op:
        for name in reversed(CHANGE_COLUMNS):
            batch_op.drop_column(name)
