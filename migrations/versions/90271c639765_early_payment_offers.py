"""Early payment offers (dynamic discounting)

A buyer's offer to pay a confirmed payable before its due date at an annual rate of discount,
one per receivable and revised in place, as the ledger keeps it; once the holder accepts, the
repayment its acceptance queued and what the settlement paid and discounted.

Revision ID: 90271c639765
Revises: c7606c2024ce
Create Date: 2026-12-05 09:40:21.800117

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '90271c639765'
down_revision = 'c7606c2024ce'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('early_payment_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('annual_rate_bps', sa.Integer(), nullable=False),
    sa.Column('expiry', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'open', 'withdrawn', 'accepted', 'lapsed', name=op.f('ck_early_payment_offers_status'), native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('repayment_id', sa.Integer(), nullable=True),
    sa.Column('paid_minor', sa.BigInteger(), nullable=True),
    sa.Column('discount_minor', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('annual_rate_bps > 0 AND annual_rate_bps <= 10000', name=op.f('ck_early_payment_offers_annual_rate_bps_in_range')),
    sa.CheckConstraint('paid_minor >= 0 AND discount_minor >= 0', name=op.f('ck_early_payment_offers_settled_amounts_not_negative')),
    sa.ForeignKeyConstraint(['buyer_id'], ['organisations.id'], name=op.f('fk_early_payment_offers_buyer_id_organisations')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_early_payment_offers_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['repayment_id'], ['repayments.id'], name=op.f('fk_early_payment_offers_repayment_id_repayments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_early_payment_offers')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_early_payment_offers_invoice_id'))
    )
    with op.batch_alter_table('early_payment_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_early_payment_offers_buyer_id'), ['buyer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_early_payment_offers_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('early_payment_offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_early_payment_offers_status'))
        batch_op.drop_index(batch_op.f('ix_early_payment_offers_buyer_id'))

    op.drop_table('early_payment_offers')
