"""Initial schema

Participants, invoices, financing, the chain outbox and indexer, the audit log with the
triggers that keep it append-only, and idempotency records.

Revision ID: 5b8d93aa667f
Revises:
Create Date: 2026-11-24 16:08:56.458069

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '5b8d93aa667f'
down_revision = None
branch_labels = None
depends_on = None

CONTRACT_NAMES = ('SettlementToken', 'ReceivableRegistry', 'Financing')
AUDIT_LOG_APPEND_ONLY = 'audit_log is append-only'


def json_document():
    """JSONB on PostgreSQL, JSON text elsewhere (backend.models.types.JSONDocument)."""
    return sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def checked_enum(constraint_name, *values):
    """A string column limited to `values` by a CHECK constraint (backend.models.types.enum_type)."""
    return sa.Enum(*values, name=op.f(constraint_name), native_enum=False, create_constraint=True, length=32)


def upgrade():
    op.create_table('organisations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('legal_identifier', sa.String(length=100), nullable=False),
    sa.Column('roles', sa.Integer(), nullable=False),
    sa.Column('chain_address', sa.String(length=42), nullable=True),
    sa.Column('participant_id', sa.BigInteger(), nullable=True),
    sa.Column('kyc_status', checked_enum('ck_organisations_kyc_status', 'pending', 'approved', 'rejected'), nullable=False),
    sa.Column('suspended', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('suspension_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('roles >= 0 AND roles <= 31', name=op.f('ck_organisations_roles_known')),
    sa.CheckConstraint('participant_id > 0', name=op.f('ck_organisations_participant_id_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('legal_identifier', name=op.f('uq_organisations_legal_identifier')),
    sa.UniqueConstraint('chain_address', name=op.f('uq_organisations_chain_address')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_organisations_participant_id'))
    )
    op.create_index(op.f('ix_organisations_kyc_status'), 'organisations', ['kyc_status'])

    op.create_table('signing_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('keystore_json', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_signing_keys_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signing_keys')),
    sa.UniqueConstraint('organisation_id', name=op.f('uq_signing_keys_organisation_id')),
    sa.UniqueConstraint('address', name=op.f('uq_signing_keys_address'))
    )

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_users_email_lowercase')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_users_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_index(op.f('ix_users_organisation_id'), 'users', ['organisation_id'])

    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=8), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', json_document(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_api_keys_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_api_keys_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )
    op.create_index(op.f('ix_api_keys_organisation_id'), 'api_keys', ['organisation_id'])

    op.create_table('documents',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=127), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('original_filename', sa.String(length=255), nullable=True),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_documents_size_bytes_positive')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['organisations.id'], name=op.f('fk_documents_uploaded_by_id_organisations')),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_documents'))
    )
    op.create_index(op.f('ix_documents_uploaded_by_id'), 'documents', ['uploaded_by_id'])

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('invoice_number', sa.String(length=100), nullable=True),
    sa.Column('invoice_number_hash', sa.String(length=66), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('repaid_minor', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('source', checked_enum('ck_invoices_source', 'pdf', 'csv', 'ubl', 'api', 'split'), nullable=False),
    sa.Column('receivable_id', sa.String(length=66), nullable=True),
    sa.Column('status', checked_enum('ck_invoices_status', 'pending', 'registered', 'confirmed', 'disputed', 'cancelled', 'split', 'repaid'), nullable=False),
    sa.Column('delinquency', checked_enum('ck_invoices_delinquency', 'none', 'overdue', 'defaulted'), nullable=False),
    sa.Column('dispute_reason', sa.Text(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('split_index', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_invoices_amount_minor_positive')),
    sa.CheckConstraint('repaid_minor >= 0 AND repaid_minor <= amount_minor', name=op.f('ck_invoices_repaid_minor_within_amount')),
    sa.CheckConstraint('due_date >= issue_date', name=op.f('ck_invoices_due_date_not_before_issue_date')),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_invoices_currency_iso_4217')),
    sa.CheckConstraint('receivable_id = lower(receivable_id) AND length(receivable_id) = 66', name=op.f('ck_invoices_receivable_id_lowercase_hex')),
    sa.CheckConstraint('(parent_id IS NULL) = (split_index IS NULL)', name=op.f('ck_invoices_split_index_with_parent')),
    sa.ForeignKeyConstraint(['supplier_id'], ['organisations.id'], name=op.f('fk_invoices_supplier_id_organisations')),
    sa.ForeignKeyConstraint(['buyer_id'], ['organisations.id'], name=op.f('fk_invoices_buyer_id_organisations')),
    sa.ForeignKeyConstraint(['holder_id'], ['organisations.id'], name=op.f('fk_invoices_holder_id_organisations')),
    sa.ForeignKeyConstraint(['document_sha256'], ['documents.sha256'], name=op.f('fk_invoices_document_sha256_documents')),
    sa.ForeignKeyConstraint(['parent_id'], ['invoices.id'], name=op.f('fk_invoices_parent_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('supplier_id', 'buyer_id', 'invoice_number_hash', name=op.f('uq_invoices_supplier_id_buyer_id_invoice_number_hash')),
    sa.UniqueConstraint('parent_id', 'split_index', name=op.f('uq_invoices_parent_id_split_index')),
    sa.UniqueConstraint('receivable_id', name=op.f('uq_invoices_receivable_id'))
    )
    op.create_index(op.f('ix_invoices_supplier_id'), 'invoices', ['supplier_id'])
    op.create_index(op.f('ix_invoices_buyer_id'), 'invoices', ['buyer_id'])
    op.create_index(op.f('ix_invoices_holder_id'), 'invoices', ['holder_id'])
    op.create_index(op.f('ix_invoices_due_date'), 'invoices', ['due_date'])
    op.create_index(op.f('ix_invoices_status'), 'invoices', ['status'])
    op.create_index(op.f('ix_invoices_delinquency'), 'invoices', ['delinquency'])

    op.create_table('financing_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('seller_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=True),
    sa.Column('asking_advance_minor', sa.BigInteger(), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recourse', sa.Boolean(), nullable=False),
    sa.Column('status', checked_enum('ck_financing_requests_status', 'pending', 'open', 'funded', 'cancelled', 'expired', 'unwound'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('asking_advance_minor > 0', name=op.f('ck_financing_requests_asking_advance_minor_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_financing_requests_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['seller_id'], ['organisations.id'], name=op.f('fk_financing_requests_seller_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_financing_requests')),
    sa.UniqueConstraint('invoice_id', 'round', name=op.f('uq_financing_requests_invoice_id_round'))
    )
    op.create_index(op.f('ix_financing_requests_seller_id'), 'financing_requests', ['seller_id'])
    op.create_index(op.f('ix_financing_requests_status'), 'financing_requests', ['status'])

    op.create_table('offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('financing_request_id', sa.Integer(), nullable=False),
    sa.Column('financier_id', sa.Integer(), nullable=False),
    sa.Column('advance_minor', sa.BigInteger(), nullable=False),
    sa.Column('expiry', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', checked_enum('ck_offers_status', 'pending', 'open', 'withdrawn', 'accepted', 'lapsed'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('advance_minor > 0', name=op.f('ck_offers_advance_minor_positive')),
    sa.ForeignKeyConstraint(['financing_request_id'], ['financing_requests.id'], name=op.f('fk_offers_financing_request_id_financing_requests')),
    sa.ForeignKeyConstraint(['financier_id'], ['organisations.id'], name=op.f('fk_offers_financier_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers')),
    sa.UniqueConstraint('financing_request_id', 'financier_id', name=op.f('uq_offers_financing_request_id_financier_id'))
    )
    op.create_index(op.f('ix_offers_financier_id'), 'offers', ['financier_id'])
    op.create_index(op.f('ix_offers_status'), 'offers', ['status'])

    op.create_table('repayments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', checked_enum('ck_repayments_status', 'pending', 'recorded', 'failed'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_repayments_amount_minor_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_repayments_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payer_id'], ['organisations.id'], name=op.f('fk_repayments_payer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repayments'))
    )
    op.create_index(op.f('ix_repayments_invoice_id'), 'repayments', ['invoice_id'])
    op.create_index(op.f('ix_repayments_payer_id'), 'repayments', ['payer_id'])
    op.create_index(op.f('ix_repayments_status'), 'repayments', ['status'])

    op.create_table('token_operations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', checked_enum('ck_token_operations_kind', 'mint', 'burn'), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reference', sa.String(length=66), nullable=False),
    sa.Column('status', checked_enum('ck_token_operations_status', 'pending', 'done', 'failed'), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_token_operations_amount_minor_positive')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_token_operations_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_token_operations_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_operations')),
    sa.UniqueConstraint('reference', name=op.f('uq_token_operations_reference'))
    )
    op.create_index(op.f('ix_token_operations_organisation_id'), 'token_operations', ['organisation_id'])
    op.create_index(op.f('ix_token_operations_status'), 'token_operations', ['status'])

    op.create_table('chain_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intent_key', sa.String(length=255), nullable=False),
    sa.Column('signer_id', sa.Integer(), nullable=True),
    sa.Column('contract', checked_enum('ck_chain_transactions_contract', *CONTRACT_NAMES), nullable=False),
    sa.Column('function', sa.String(length=64), nullable=False),
    sa.Column('args', json_document(), nullable=False),
    sa.Column('status', checked_enum('ck_chain_transactions_status', 'queued', 'signed', 'sent', 'mined', 'reverted', 'failed'), nullable=False),
    sa.Column('nonce', sa.BigInteger(), nullable=True),
    sa.Column('raw_tx', sa.Text(), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('subject_type', sa.String(length=50), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status NOT IN ('signed', 'sent', 'mined', 'reverted') OR (raw_tx IS NOT NULL AND tx_hash IS NOT NULL AND nonce IS NOT NULL)", name=op.f('ck_chain_transactions_signed_before_sent')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_chain_transactions_attempts_not_negative')),
    sa.ForeignKeyConstraint(['signer_id'], ['organisations.id'], name=op.f('fk_chain_transactions_signer_id_organisations')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_chain_transactions_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_transactions')),
    sa.UniqueConstraint('intent_key', name=op.f('uq_chain_transactions_intent_key')),
    sa.UniqueConstraint('tx_hash', name=op.f('uq_chain_transactions_tx_hash'))
    )
    op.create_index(op.f('ix_chain_transactions_status_created_at'), 'chain_transactions', ['status', 'created_at'])
    op.create_index(op.f('ix_chain_transactions_signer_id'), 'chain_transactions', ['signer_id'])
    op.create_index(op.f('ix_chain_transactions_invoice_id'), 'chain_transactions', ['invoice_id'])
    op.create_index(op.f('ix_chain_transactions_subject_type_subject_id'), 'chain_transactions', ['subject_type', 'subject_id'])

    op.create_table('chain_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('contract', checked_enum('ck_chain_events_contract', *CONTRACT_NAMES), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('args', json_document(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_events')),
    sa.UniqueConstraint('chain_id', 'tx_hash', 'log_index', name=op.f('uq_chain_events_chain_id_tx_hash_log_index'))
    )
    op.create_index(op.f('ix_chain_events_chain_id_block_number'), 'chain_events', ['chain_id', 'block_number'])

    op.create_table('indexer_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('contract', checked_enum('ck_indexer_cursors_contract', *CONTRACT_NAMES), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indexer_cursors')),
    sa.UniqueConstraint('chain_id', 'contract', name=op.f('uq_indexer_cursors_chain_id_contract'))
    )

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_organisation_id', sa.Integer(), nullable=True),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('subject_type', sa.String(length=50), nullable=False),
    sa.Column('subject_id', sa.String(length=66), nullable=False),
    sa.Column('before', json_document(), nullable=True),
    sa.Column('after', json_document(), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_audit_log_actor_user_id_users')),
    sa.ForeignKeyConstraint(['actor_organisation_id'], ['organisations.id'], name=op.f('fk_audit_log_actor_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_audit_log_api_key_id_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_occurred_at'), 'audit_log', ['occurred_at'])
    op.create_index(op.f('ix_audit_log_actor_user_id'), 'audit_log', ['actor_user_id'])
    op.create_index(op.f('ix_audit_log_actor_organisation_id'), 'audit_log', ['actor_organisation_id'])
    op.create_index(op.f('ix_audit_log_api_key_id'), 'audit_log', ['api_key_id'])
    op.create_index(op.f('ix_audit_log_action'), 'audit_log', ['action'])
    op.create_index(op.f('ix_audit_log_subject_type_subject_id'), 'audit_log', ['subject_type', 'subject_id'])
    create_audit_log_triggers()

    op.create_table('idempotency_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('principal', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('response_headers', json_document(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('principal', 'key', name=op.f('uq_idempotency_records_principal_key'))
    )
    op.create_index(op.f('ix_idempotency_records_expires_at'), 'idempotency_records', ['expires_at'])


def downgrade():
    # Dropping a table drops its indexes; dependants go before what they refer to.
    op.drop_table('idempotency_records')
    drop_audit_log_triggers()
    op.drop_table('audit_log')
    op.drop_table('indexer_cursors')
    op.drop_table('chain_events')
    op.drop_table('chain_transactions')
    op.drop_table('token_operations')
    op.drop_table('repayments')
    op.drop_table('offers')
    op.drop_table('financing_requests')
    op.drop_table('invoices')
    op.drop_table('documents')
    op.drop_table('api_keys')
    op.drop_table('users')
    op.drop_table('signing_keys')
    op.drop_table('organisations')


def create_audit_log_triggers():
    """Refuse UPDATE and DELETE of audit log rows from any client, raw SQL included (and
    TRUNCATE on PostgreSQL). Both backends report the refusal as an integrity error."""
    if op.get_context().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{AUDIT_LOG_APPEND_ONLY}' USING ERRCODE = 'restrict_violation';
            END
            $$
        """)
        # Per statement, so even a statement that matches no row is refused.
        op.execute("""
            CREATE TRIGGER audit_log_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()
        """)
    else:
        for statement in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER audit_log_refuse_{statement.lower()}
                BEFORE {statement} ON audit_log
                BEGIN SELECT RAISE(ABORT, '{AUDIT_LOG_APPEND_ONLY}'); END
            """)


def drop_audit_log_triggers():
    if op.get_context().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER audit_log_append_only ON audit_log')
        op.execute('DROP FUNCTION audit_log_refuse_change()')
    else:
        op.execute('DROP TRIGGER audit_log_refuse_update')
        op.execute('DROP TRIGGER audit_log_refuse_delete')
