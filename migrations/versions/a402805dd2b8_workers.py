"""Workers: outbox nonces and batches, indexed blocks, token balances, reconciliation, webhooks

The outbox learns which sender and nonce each signed row took (unique per chain, so a nonce is
never used twice), earlier broadcasts of a row, decoded revert names, backoff times and batch
carriers (status 'batched'); new tables hold the next nonce per sender, the block hashes the
indexer read (to notice reorganisations), settlement-token balances, reconciliation runs and
webhook endpoints and deliveries.

Revision ID: a402805dd2b8
Revises: 5b8d93aa667f
Create Date: 2026-12-05 06:01:05.370552

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'a402805dd2b8'
down_revision = '5b8d93aa667f'
branch_labels = None
depends_on = None

OUTBOX_STATUSES = ('queued', 'signed', 'sent', 'mined', 'reverted', 'failed')
BATCHED = 'batched'
SIGNED_BEFORE_SENT = ("status NOT IN ('signed', 'sent', 'mined')"
                      " OR (raw_tx IS NOT NULL AND tx_hash IS NOT NULL AND nonce IS NOT NULL)")
INITIAL_SIGNED_BEFORE_SENT = ("status NOT IN ('signed', 'sent', 'mined', 'reverted')"
                              " OR (raw_tx IS NOT NULL AND tx_hash IS NOT NULL AND nonce IS NOT NULL)")


def json_document():
    """JSONB on PostgreSQL, JSON text elsewhere (backend.models.types.JSONDocument)."""
    return sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def checked_enum(constraint_name, *values):
    """A string column limited to `values` by a CHECK constraint (backend.models.types.enum_type)."""
    return sa.Enum(*values, name=op.f(constraint_name), native_enum=False, create_constraint=True, length=32)


def upgrade():
    op.create_table('indexed_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indexed_blocks')),
    sa.UniqueConstraint('chain_id', 'block_number', name=op.f('uq_indexed_blocks_chain_id_block_number'))
    )
    op.create_table('reconciliation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('status', checked_enum('ck_reconciliation_runs_status', 'running', 'clean', 'drift', 'failed'), nullable=False),
    sa.Column('checked', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('drift', json_document(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs'))
    )
    op.create_table('sender_nonces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('next_nonce', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('next_nonce >= 0', name=op.f('ck_sender_nonces_next_nonce_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sender_nonces')),
    sa.UniqueConstraint('chain_id', 'address', name=op.f('uq_sender_nonces_chain_id_address'))
    )
    op.create_table('token_balances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('balance_minor >= 0', name=op.f('ck_token_balances_balance_minor_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_balances')),
    sa.UniqueConstraint('chain_id', 'address', name=op.f('uq_token_balances_chain_id_address'))
    )
    op.create_index(op.f('ix_token_balances_address'), 'token_balances', ['address'])

    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('event_types', json_document(), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_webhook_endpoints_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index(op.f('ix_webhook_endpoints_organisation_id'), 'webhook_endpoints', ['organisation_id'])

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', json_document(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', checked_enum('ck_webhook_deliveries_status', 'pending', 'delivered', 'dead'), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_webhook_deliveries_attempts_not_negative')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_deliveries_endpoint_id_event_id'))
    )
    op.create_index(op.f('ix_webhook_deliveries_endpoint_id'), 'webhook_deliveries', ['endpoint_id'])
    op.create_index(op.f('ix_webhook_deliveries_status_next_attempt_at'), 'webhook_deliveries', ['status', 'next_attempt_at'])

    # SQLite cannot alter a table's constraints: batch mode copies the table (keeping its
    # CHECK constraints, which SQLAlchemy reflects from the table's SQL) and swaps it in.
    with op.batch_alter_table('chain_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('sender', sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column('replaced_tx_hashes', json_document(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('error_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('carried_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('mined_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(op.f('ix_chain_transactions_carried_by_id'), ['carried_by_id'], unique=False)
        batch_op.create_unique_constraint(op.f('uq_chain_transactions_chain_id_sender_nonce'), ['chain_id', 'sender', 'nonce'])
        batch_op.create_foreign_key(op.f('fk_chain_transactions_carried_by_id_chain_transactions'), 'chain_transactions', ['carried_by_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_chain_transactions_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_chain_transactions_status'),
                                         sa.column('status').in_(OUTBOX_STATUSES + (BATCHED,)))
        batch_op.create_check_constraint(op.f('ck_chain_transactions_batched_with_carrier'),
                                         "(status = 'batched') = (carried_by_id IS NOT NULL)")
        # A write the ledger refuses at its gas estimate is reverted without ever being signed.
        batch_op.drop_constraint(op.f('ck_chain_transactions_signed_before_sent'), type_='check')
        batch_op.create_check_constraint(op.f('ck_chain_transactions_signed_before_sent'), SIGNED_BEFORE_SENT)


def downgrade():
    with op.batch_alter_table('chain_transactions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_chain_transactions_signed_before_sent'), type_='check')
        batch_op.create_check_constraint(op.f('ck_chain_transactions_signed_before_sent'), INITIAL_SIGNED_BEFORE_SENT)
        batch_op.drop_constraint(op.f('ck_chain_transactions_batched_with_carrier'), type_='check')
        batch_op.drop_constraint(op.f('ck_chain_transactions_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_chain_transactions_status'), sa.column('status').in_(OUTBOX_STATUSES))
        batch_op.drop_constraint(op.f('fk_chain_transactions_carried_by_id_chain_transactions'), type_='foreignkey')
        batch_op.drop_constraint(op.f('uq_chain_transactions_chain_id_sender_nonce'), type_='unique')
        batch_op.drop_index(op.f('ix_chain_transactions_carried_by_id'))
        for column in ('mined_at', 'sent_at', 'next_attempt_at', 'carried_by_id', 'error_name',
                       'replaced_tx_hashes', 'sender', 'chain_id'):
            batch_op.drop_column(column)

    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_table('token_balances')
    op.drop_table('sender_nonces')
    op.drop_table('reconciliation_runs')
    op.drop_table('indexed_blocks')
