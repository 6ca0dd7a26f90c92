"""`anchorline reindex` rebuilds every projection from the chain, and the result equals what
incremental indexing built, column for column."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import delete, select

from backend.cli import main as anchorline
from backend.extensions import db
from backend.models import (
    FinancingRequestStatus,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    OfferStatus,
    Organisation,
    Repayment,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests import domain_factories
from backend.services.invoices import receivable_hex
from tests.indexer_fixtures import IndexedChain, projection_state, token_reference
from workers import indexer


def build_history(chain: IndexedChain) -> dict[str, Invoice]:
    """A lifecycle indexed step by step: registrations, a confirmation, a dispute, a split, a
    financing with a revised and a withdrawn offer, repayments, a mint; and one write still
    pending on the ledger."""
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    financier, rival = chain.organisation(Role.FINANCIER), chain.organisation(Role.FINANCIER)
    registry, financing = chain.ledger.registry.functions, chain.ledger.financing.functions
    financed, split, disputed = (chain.pending_invoice(supplier, buyer, amount_minor=1_000) for _ in range(3))
    never_sent = chain.pending_invoice(supplier, buyer)
    ids = {name: chain.register(invoice) for name, invoice in
           (("financed", financed), ("split", split), ("disputed", disputed))}
    chain.index()

    chain.send(buyer, registry.confirm(ids["financed"]))
    chain.send(buyer, registry.confirm(ids["split"]))
    chain.send(buyer, registry.dispute(ids["disputed"], 1))
    for org in (financier, rival, buyer):
        chain.mint(org, 10_000, token_reference(f"reindex deposit {org.id}"))
    chain.index()

    children = [Invoice(supplier_id=supplier.id, buyer_id=buyer.id, holder=holder, currency="CNY", amount_minor=500,
                        issue_date=split.issue_date, due_date=split.due_date, source=InvoiceSource.SPLIT,
                        receivable_id=receivable_hex(registry.childId(ids["split"], index).call()),
                        status=InvoiceStatus.PENDING, parent=split, split_index=index)
                for index, holder in enumerate((supplier, financier))]
    db.session.add_all(children)
    request = domain_factories.financing_request(financed, status=FinancingRequestStatus.PENDING,
                                                 asking_advance_minor=800)
    offers = [domain_factories.offer(request, org, status=OfferStatus.PENDING, advance_minor=900)
              for org in (financier, rival)]
    db.session.commit()
    chain.send(supplier, registry.split(ids["split"], [500, 500], [supplier.chain_address, financier.chain_address]))
    now = chain.ledger.now()
    chain.send(supplier, financing.requestFinancing(ids["financed"], 800, now + 86_400 * 30, False))
    chain.send(financier, financing.makeOffer(ids["financed"], 850, now + 86_400 * 20))
    chain.send(rival, financing.makeOffer(ids["financed"], 880, now + 86_400 * 20))
    chain.index()

    chain.send(rival, financing.withdrawOffer(ids["financed"]))
    chain.send(financier, financing.makeOffer(ids["financed"], 900, now + 86_400 * 20))
    chain.send(supplier, financing.acceptOffer(ids["financed"], financier.chain_address, 900))
    db.session.add(Repayment(invoice=financed, payer=buyer, amount_minor=400))
    db.session.commit()
    chain.send(buyer, financing.repay(ids["financed"], 400))
    chain.index()
    assert offers[0].status == OfferStatus.ACCEPTED and financed.holder_id == financier.id
    return {"financed": financed, "split": split, "disputed": disputed, "never_sent": never_sent}


def test_reindex_equals_incremental_indexing(indexed_chain: IndexedChain):
    invoices = build_history(indexed_chain)
    incremental = projection_state()

    stored = indexer.reindex()

    assert stored == len(incremental["chain_events"])
    assert projection_state() == incremental
    assert invoices["financed"].repaid_minor == 400 and invoices["never_sent"].status == InvoiceStatus.PENDING


def test_a_reorganisation_refolds_to_the_same_state_as_reindexing(indexed_chain: IndexedChain):
    chain = indexed_chain
    build_history(chain)
    fork = chain.snapshot()
    supplier = db.session.scalars(select(Organisation).where(Organisation.roles == Role.SUPPLIER)).first()
    late = chain.pending_invoice(supplier, db.session.scalars(
        select(Organisation).where(Organisation.roles == Role.BUYER)).first())
    chain.register(late)
    chain.index()
    assert late.status == InvoiceStatus.REGISTERED

    chain.revert(fork)  # the registration is orphaned; the new branch has an empty block
    chain.mine(2)
    chain.index()
    after_reorg = projection_state()
    assert late.status == InvoiceStatus.PENDING

    indexer.reindex()
    assert projection_state() == after_reorg


def test_the_reindex_command(indexed_chain: IndexedChain, monkeypatch):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice, _receivable = chain.confirmed_invoice(supplier, buyer)
    chain.index()
    invoice.status = InvoiceStatus.DISPUTED  # drift, which the rebuild corrects
    db.session.commit()
    monkeypatch.setenv("DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ETH_RPC_URL", chain.anvil.rpc_url)

    result = CliRunner().invoke(anchorline, ["reindex"])

    assert result.exit_code == 0, result.output
    assert "reindexed:" in result.output
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.CONFIRMED


def test_reindex_announces_only_what_was_not_indexed_before(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    endpoint = WebhookEndpoint(organisation=buyer, url="https://example.com/hook", secret="s" * 32,
                               event_types=["invoice.registered", "invoice.confirmed"])
    db.session.add(endpoint)
    invoice = chain.pending_invoice(supplier, buyer)
    receivable = chain.register(invoice)
    chain.index()
    db.session.execute(delete(WebhookDelivery))  # delivered and purged, say: a replay would add them again
    db.session.commit()

    # Mined while the workers were stopped for the reindex: nobody has been told yet.
    chain.send(buyer, chain.ledger.registry.functions.confirm(receivable))
    indexer.reindex()

    db.session.expire_all()
    assert invoice.status == InvoiceStatus.CONFIRMED
    assert [d.event_type for d in db.session.scalars(select(WebhookDelivery))] == ["invoice.confirmed"]
