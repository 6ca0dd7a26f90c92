"""KYC reviews, watch lists and screening hits

Each KYC decision is kept with the documents checked and who decided; the operator's sanctions
and watch lists, entry by entry, with their names and addresses normalised for matching; and
the hits screening finds against organisations, open until someone clears or confirms them.

Revision ID: c7606c2024ce
Revises: 31d5a927313a
Create Date: 2026-12-05 09:18:45.611551

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'c7606c2024ce'
down_revision = '31d5a927313a'
branch_labels = None
depends_on = None


def json_document():
    """JSONB on PostgreSQL, JSON text elsewhere (backend.models.types.JSONDocument)."""
    return sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table('kyc_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.Enum('pending', 'approved', 'rejected', name=op.f('ck_kyc_reviews_decision'), native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('documents_checked', json_document(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_kyc_reviews_decided_by_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_kyc_reviews_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kyc_reviews'))
    )
    with op.batch_alter_table('kyc_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kyc_reviews_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('screening_hits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('list_name', sa.String(length=100), nullable=False),
    sa.Column('entry_reference', sa.String(length=100), nullable=False),
    sa.Column('matched_on', sa.String(length=20), nullable=False),
    sa.Column('entry_value', sa.String(length=300), nullable=False),
    sa.Column('status', sa.Enum('open', 'cleared', 'confirmed', name=op.f('ck_screening_hits_status'), native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_screening_hits_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_screening_hits_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_hits')),
    sa.UniqueConstraint('organisation_id', 'list_name', 'entry_reference', 'matched_on', name=op.f('uq_screening_hits_organisation_id_list_name_entry_reference_matched_on'))
    )
    with op.batch_alter_table('screening_hits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screening_hits_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_screening_hits_status'), ['status'], unique=False)

    op.create_table('watch_list_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_name', sa.String(length=100), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=True),
    sa.Column('normalised_name', sa.String(length=300), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('normalised_address', sa.String(length=300), nullable=True),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('loaded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['loaded_by_id'], ['users.id'], name=op.f('fk_watch_list_entries_loaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_list_entries')),
    sa.UniqueConstraint('list_name', 'reference', name=op.f('uq_watch_list_entries_list_name_reference'))
    )
    with op.batch_alter_table('watch_list_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watch_list_entries_list_name'), ['list_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_list_entries_normalised_address'), ['normalised_address'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_list_entries_normalised_name'), ['normalised_name'], unique=False)



def downgrade():
    with op.batch_alter_table('watch_list_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watch_list_entries_normalised_name'))
        batch_op.drop_index(batch_op.f('ix_watch_list_entries_normalised_address'))
        batch_op.drop_index(batch_op.f('ix_watch_list_entries_list_name'))

    op.drop_table('watch_list_entries')
    with op.batch_alter_table('screening_hits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screening_hits_status'))
        batch_op.drop_index(batch_op.f('ix_screening_hits_organisation_id'))

    op.drop_table('screening_hits')
    with op.batch_alter_table('kyc_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_reviews_organisation_id'))

    op.drop_table('kyc_reviews')
