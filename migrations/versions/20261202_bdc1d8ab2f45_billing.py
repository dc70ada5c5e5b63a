"""Billing: contracts and prices, the ledger, closed months, statements and their lines, Stripe's
customers, connected accounts and events.

Every force-owned billing table is under the tenant policy; provider staff
read their own provider's contracts, prices, statements and lines, write
ledger rows as their moves of a referral announce themselves, and reach
nothing of a force's Stripe customer. The ledger is append-only: the
database refuses an UPDATE or DELETE of a ledger row.

Revision ID: bdc1d8ab2f45
Revises: 4f0c8e2b7a61
Create Date: 2026-12-02 06:06:59.402270

"""
import sqlalchemy as sa
from alembic import op

import diversion.db
from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = 'bdc1d8ab2f45'
down_revision = '4f0c8e2b7a61'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('billing_stripe_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('created', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=True),
    sa.Column('amount_paid_pence', sa.Integer(), nullable=True),
    sa.Column('matched', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_stripe_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_billing_stripe_events_event_id'))
    )
    with op.batch_alter_table('billing_stripe_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_stripe_events_stripe_invoice_id'), ['stripe_invoice_id'], unique=False)

    op.create_table('billing_closed_months',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('closed_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_billing_closed_months_closed_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_closed_months_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_closed_months')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_closed_months_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'month', name=op.f('uq_billing_closed_months_tenant_id_month')),
    info={'tenant_scoped': True}
    )
    op.create_table('billing_connected_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('stripe_account_id', sa.String(length=255), nullable=False),
    sa.Column('details_submitted', sa.Boolean(), nullable=False),
    sa.Column('transfers_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_billing_connected_accounts_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_connected_accounts')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_billing_connected_accounts_provider_id')),
    sa.UniqueConstraint('stripe_account_id', name=op.f('uq_billing_connected_accounts_stripe_account_id'))
    )
    op.create_table('billing_contracts',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('monthly_fee_pence', sa.Integer(), nullable=False),
    sa.Column('vat', sa.Enum('exempt', 'standard', name='vattreatment', native_enum=False, length=24), nullable=False),
    sa.Column('platform_fee_basis_points', sa.Integer(), nullable=False),
    sa.Column('notes', sa.String(length=1000), nullable=False),
    sa.Column('created_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('ends_on IS NULL OR ends_on >= starts_on', name=op.f('ck_billing_contracts_ends_after_it_starts')),
    sa.CheckConstraint('monthly_fee_pence >= 0', name=op.f('ck_billing_contracts_monthly_fee_not_negative')),
    sa.CheckConstraint('platform_fee_basis_points BETWEEN 0 AND 10000', name=op.f('ck_billing_contracts_platform_fee_in_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_billing_contracts_created_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_billing_contracts_provider_id_providers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_contracts_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_contracts')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_contracts_tenant_id_id')),
    info={'tenant_scoped': True}
    )
    with op.batch_alter_table('billing_contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_contracts_tenant_id_provider_id_starts_on'), ['tenant_id', 'provider_id', 'starts_on'], unique=False)

    op.create_table('billing_customers',
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_customers_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_customers')),
    sa.UniqueConstraint('stripe_customer_id', name=op.f('uq_billing_customers_stripe_customer_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_customers_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_billing_customers_tenant_id')),
    info={'tenant_scoped': True}
    )
    op.create_table('billing_statements',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('net_pence', sa.Integer(), nullable=False),
    sa.Column('vat_pence', sa.Integer(), nullable=False),
    sa.Column('platform_fee_pence', sa.Integer(), nullable=False),
    sa.Column('to_provider_pence', sa.Integer(), nullable=False),
    sa.Column('created_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=True),
    sa.Column('invoice_status', sa.Enum('not_sent', 'skipped', 'draft', 'open', 'payment_failed', 'paid', 'void', name='invoicestatus', native_enum=False, length=24), nullable=False),
    sa.Column('invoice_due_on', sa.Date(), nullable=True),
    sa.Column('amount_paid_pence', sa.Integer(), nullable=False),
    sa.Column('invoice_updated_at', diversion.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_billing_statements_provider_id_providers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_statements_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_statements')),
    sa.UniqueConstraint('stripe_invoice_id', name=op.f('uq_billing_statements_stripe_invoice_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_statements_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'provider_id', 'month', name=op.f('uq_billing_statements_tenant_id_provider_id_month')),
    info={'tenant_scoped': True}
    )
    with op.batch_alter_table('billing_statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_statements_provider_id_month'), ['provider_id', 'month'], unique=False)

    op.create_table('billing_prices',
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('referral_accepted', 'session_attended', 'course_completed', 'monthly_fee', name='eventkind', native_enum=False, length=24), nullable=False),
    sa.Column('pathway', sa.String(length=63), nullable=False),
    sa.Column('unit_pence', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('unit_pence >= 0', name=op.f('ck_billing_prices_unit_pence_not_negative')),
    sa.ForeignKeyConstraint(['tenant_id', 'contract_id'], ['billing_contracts.tenant_id', 'billing_contracts.id'], name=op.f('fk_billing_prices_tenant_id_contract_id_billing_contracts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_prices_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_prices')),
    sa.UniqueConstraint('tenant_id', 'contract_id', 'kind', 'pathway', name=op.f('uq_billing_prices_tenant_id_contract_id_kind_pathway')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_prices_tenant_id_id')),
    info={'tenant_scoped': True}
    )
    op.create_table('billing_statement_lines',
    sa.Column('statement_id', sa.Uuid(), nullable=False),
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('referral_accepted', 'session_attended', 'course_completed', 'monthly_fee', name='eventkind', native_enum=False, length=24), nullable=False),
    sa.Column('pathway', sa.String(length=63), nullable=False),
    sa.Column('unit_pence', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('vat_pence', sa.Integer(), nullable=False),
    sa.Column('stripe_item_id', sa.String(length=255), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'contract_id'], ['billing_contracts.tenant_id', 'billing_contracts.id'], name=op.f('fk_billing_statement_lines_tenant_id_contract_id_billing_contracts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id', 'statement_id'], ['billing_statements.tenant_id', 'billing_statements.id'], name=op.f('fk_billing_statement_lines_tenant_id_statement_id_billing_statements'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_statement_lines_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_statement_lines')),
    sa.UniqueConstraint('stripe_item_id', name=op.f('uq_billing_statement_lines_stripe_item_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_statement_lines_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'statement_id', 'contract_id', 'kind', 'pathway', 'unit_pence', name=op.f('uq_billing_statement_lines_tenant_id_statement_id_contract_id_kind_pathway_unit_pence')),
    info={'tenant_scoped': True}
    )
    op.create_table('ledger_entries',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('kind', sa.Enum('referral_accepted', 'session_attended', 'course_completed', 'monthly_fee', name='eventkind', native_enum=False, length=24), nullable=False),
    sa.Column('pathway', sa.String(length=63), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_pence', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('reverses_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount_pence = unit_pence * quantity', name=op.f('ck_ledger_entries_amount_is_unit_times_quantity')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_ledger_entries_created_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_ledger_entries_provider_id_providers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id', 'contract_id'], ['billing_contracts.tenant_id', 'billing_contracts.id'], name=op.f('fk_ledger_entries_tenant_id_contract_id_billing_contracts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id', 'referral_id'], ['referrals.tenant_id', 'referrals.id'], name=op.f('fk_ledger_entries_tenant_id_referral_id_referrals'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id', 'reverses_id'], ['ledger_entries.tenant_id', 'ledger_entries.id'], name=op.f('fk_ledger_entries_tenant_id_reverses_id_ledger_entries'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_entries_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_ledger_entries_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'key', name=op.f('uq_ledger_entries_tenant_id_key')),
    sa.UniqueConstraint('tenant_id', 'reverses_id', name=op.f('uq_ledger_entries_tenant_id_reverses_id')),
    info={'tenant_scoped': True}
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_provider_id_month'), ['provider_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_tenant_id_month_provider_id'), ['tenant_id', 'month', 'provider_id'], unique=False)

    if rls.is_postgresql(op.get_bind()):
        for statement in _policies():
            op.execute(statement)


_MINE = f"provider_id = {rls.CURRENT_PROVIDER}"
_TABLES = ("billing_contracts", "billing_prices", "ledger_entries", "billing_closed_months", "billing_statements",
           "billing_statement_lines", "billing_customers")


def _policies():
    statements = [statement for table in _TABLES for statement in rls.policy_sql(table)]
    statements += rls.provider_policy_sql("billing_contracts", _MINE)
    statements += rls.provider_policy_sql(
        "billing_prices", f"contract_id IN (SELECT id FROM billing_contracts WHERE {_MINE})")  # noqa: S608 - constants
    statements += rls.provider_policy_sql("ledger_entries", _MINE, insert=True)
    statements += rls.provider_policy_sql("billing_closed_months", "true")
    statements += rls.provider_policy_sql("billing_statements", _MINE)
    statements += rls.provider_policy_sql(
        "billing_statement_lines", f"statement_id IN (SELECT id FROM billing_statements WHERE {_MINE})")  # noqa: S608 - constants
    statements += rls.provider_excluded_sql("billing_customers")
    statements += [
        "CREATE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'ledger rows are never changed: write a reversal' "
        "USING ERRCODE = 'integrity_constraint_violation'; END $$",
        "CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()",
    ]
    return statements


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        op.execute("DROP TRIGGER IF EXISTS ledger_append_only ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS refuse_ledger_change()")
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_tenant_id_month_provider_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_provider_id_month'))

    op.drop_table('ledger_entries')
    op.drop_table('billing_statement_lines')
    op.drop_table('billing_prices')
    with op.batch_alter_table('billing_statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_statements_provider_id_month'))

    op.drop_table('billing_statements')
    op.drop_table('billing_customers')
    with op.batch_alter_table('billing_contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_contracts_tenant_id_provider_id_starts_on'))

    op.drop_table('billing_contracts')
    op.drop_table('billing_connected_accounts')
    op.drop_table('billing_closed_months')
    with op.batch_alter_table('billing_stripe_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_stripe_events_stripe_invoice_id'))

    op.drop_table('billing_stripe_events')
