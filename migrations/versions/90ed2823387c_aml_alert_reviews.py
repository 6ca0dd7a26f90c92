"""AML alert reviews: who cleared or reported an alert on settlement-token movements, and why

Revision ID: 90ed2823387c
Revises: 90271c639765
Create Date: 2026-12-05 09:54:33.133301

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '90ed2823387c'
down_revision = '90271c639765'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('aml_alert_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_key', sa.String(length=300), nullable=False),
    sa.Column('status', sa.Enum('cleared', 'reported', name=op.f('ck_aml_alert_reviews_status'), native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_aml_alert_reviews_reviewed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aml_alert_reviews')),
    sa.UniqueConstraint('alert_key', name=op.f('uq_aml_alert_reviews_alert_key'))
    )


def downgrade():
    op.drop_table('aml_alert_reviews')
