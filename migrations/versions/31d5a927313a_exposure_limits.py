"""Exposure limits: how much a financier will have at stake on one buyer or one supplier

Revision ID: 31d5a927313a
Revises: a402805dd2b8
Create Date: 2026-12-05 09:02:33.537506

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '31d5a927313a'
down_revision = 'a402805dd2b8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('exposure_limits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('financier_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.Enum('supplier', 'buyer', name=op.f('ck_exposure_limits_side'), native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('limit_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('limit_minor > 0', name=op.f('ck_exposure_limits_limit_minor_positive')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['organisations.id'], name=op.f('fk_exposure_limits_counterparty_id_organisations')),
    sa.ForeignKeyConstraint(['financier_id'], ['organisations.id'], name=op.f('fk_exposure_limits_financier_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exposure_limits')),
    sa.UniqueConstraint('financier_id', 'counterparty_id', 'side', name=op.f('uq_exposure_limits_financier_id_counterparty_id_side'))
    )
    with op.batch_alter_table('exposure_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exposure_limits_financier_id'), ['financier_id'], unique=False)



def downgrade():
    with op.batch_alter_table('exposure_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exposure_limits_financier_id'))

    op.drop_table('exposure_limits')
