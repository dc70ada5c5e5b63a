"""The local Stripe server, driven by the official SDK as billing drives it."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
import stripe

from tests.stripe_server import StripeServer

KEY = "sk_test_local"


@pytest.fixture
def server() -> Iterator[StripeServer]:
    with StripeServer() as running:
        yield running


def _client(server: StripeServer, key: str = KEY) -> tuple[stripe.StripeClient, stripe.HTTPClient]:
    http = stripe.RequestsClient(timeout=5)
    return stripe.StripeClient(key, base_addresses={"api": server.url, "connect": server.url},
                               max_network_retries=0, http_client=http), http


@pytest.fixture
def sdk(server: StripeServer) -> Iterator[stripe.StripeClient]:
    client, http = _client(server)
    yield client
    http.close()


def _invoice_with_lines(sdk: stripe.StripeClient) -> tuple[stripe.Invoice, stripe.TaxRate]:
    customer = sdk.v1.customers.create({"name": "Thames Valley Police", "metadata": {"force": "tvp"}},
                                       {"idempotency_key": "customer:tvp"})
    account = sdk.v1.accounts.create({"type": "express", "country": "GB"})
    vat = sdk.v1.tax_rates.create({"display_name": "VAT", "percentage": 20, "inclusive": False})
    invoice = sdk.v1.invoices.create({
        "customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30, "currency": "gbp",
        "transfer_data": {"destination": account.id}, "application_fee_amount": 500,
        "metadata": {"statement": "s1"}}, {"idempotency_key": "invoice:s1"})
    sdk.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "quantity": 3,
                                 "unit_amount_decimal": "7000", "currency": "gbp", "tax_rates": [vat.id],
                                 "metadata": {"statement": "s1", "line": "l1"}}, {"idempotency_key": "line:l1"})
    sdk.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "quantity": 2,
                                 "unit_amount_decimal": "1500", "currency": "gbp",
                                 "metadata": {"statement": "s1", "line": "l2"}}, {"idempotency_key": "line:l2"})
    return sdk.v1.invoices.retrieve(invoice.id), vat


def test_an_invoice_is_built_from_what_the_calls_created(server: StripeServer, sdk: stripe.StripeClient) -> None:
    invoice, vat = _invoice_with_lines(sdk)
    assert invoice.status == "draft"
    assert invoice.collection_method == "send_invoice"
    assert invoice.transfer_data is not None
    assert invoice.application_fee_amount == 500
    assert invoice.subtotal == 3 * 7000 + 2 * 1500
    assert invoice.total == 24000 + 4200  # 20% VAT on the first line only
    lines = list(sdk.v1.invoices.line_items.list(invoice.id, {"limit": 1}).auto_paging_iter())
    assert [(line.quantity, line.amount, line.metadata["line"]) for line in lines] == [
        (3, 21000, "l1"), (2, 3000, "l2")]
    assert lines[0].taxes is not None
    assert lines[0].taxes[0].amount == 4200
    assert lines[0].taxes[0].tax_rate_details is not None
    assert lines[0].taxes[0].tax_rate_details.tax_rate == vat.id

    finalized = sdk.v1.invoices.finalize_invoice(invoice.id, {"auto_advance": False})
    assert finalized.status == "open"
    assert finalized.due_date is not None
    sdk.v1.invoices.send_invoice(invoice.id)
    assert server.sent_invoices == [invoice.id]
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.invoice_items.create({"customer": invoice.customer, "invoice": invoice.id, "amount": 1})
    assert sdk.v1.invoices.pay(invoice.id).status == "paid"


def test_requests_are_recorded_with_their_fields_and_keys(server: StripeServer, sdk: stripe.StripeClient) -> None:
    invoice, vat = _invoice_with_lines(sdk)
    created = next(server.iter_requests("POST /v1/invoices"))
    assert created.idempotency_key == "invoice:s1"
    assert created.fields["collection_method"] == "send_invoice"
    assert created.fields["metadata[statement]"] == "s1"
    assert created.fields["transfer_data[destination]"].startswith("acct_")
    item = next(server.iter_requests("POST /v1/invoiceitems"))
    assert item.fields["tax_rates[0]"] == vat.id
    assert item.idempotency_key == "line:l1"
    assert server.calls()[-1] == f"GET /v1/invoices/{invoice.id}"


def test_a_repeated_key_replays_the_stored_answer_until_forgotten(server: StripeServer,
                                                                  sdk: stripe.StripeClient) -> None:
    first = sdk.v1.customers.create({"name": "Kent Police"}, {"idempotency_key": "customer:kent"})
    again = sdk.v1.customers.create({"name": "Kent Police"}, {"idempotency_key": "customer:kent"})
    assert again.id == first.id
    assert server.requests[-1].replayed
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.customers.create({"name": "Another"}, {"idempotency_key": "customer:kent"})
    server.forget_keys()
    third = sdk.v1.customers.create({"name": "Kent Police"}, {"idempotency_key": "customer:kent"})
    assert third.id != first.id
    assert len(server.of_kind("customer")) == 2


def test_customers_are_found_by_their_metadata(sdk: stripe.StripeClient) -> None:
    made = sdk.v1.customers.create({"name": "Kent Police", "metadata": {"force": "kent"}})
    sdk.v1.customers.create({"name": "Surrey Police", "metadata": {"force": "surrey"}})
    found = sdk.v1.customers.search({"query": "metadata['force']:'kent'"})
    assert [customer.id for customer in found.data] == [made.id]


def test_lists_page_and_filter(sdk: stripe.StripeClient) -> None:
    invoice, _vat = _invoice_with_lines(sdk)
    items = list(sdk.v1.invoice_items.list({"invoice": invoice.id, "limit": 1}).auto_paging_iter())
    assert sorted(item.metadata["line"] for item in items) == ["l1", "l2"]
    assert [each.id for each in sdk.v1.invoices.list({"customer": invoice.customer}).data] == [invoice.id]
    assert sdk.v1.invoices.list({"customer": "cus_nobody"}).data == []


def test_a_test_changes_a_stored_line(server: StripeServer, sdk: stripe.StripeClient) -> None:
    invoice, _vat = _invoice_with_lines(sdk)
    server.change_line(invoice.id, 1, quantity=5)
    lines = sdk.v1.invoices.line_items.list(invoice.id).data
    assert [(line.quantity, line.amount) for line in lines] == [(3, 21000), (5, 7500)]
    assert sdk.v1.invoices.retrieve(invoice.id).subtotal == 21000 + 7500


def test_the_server_dies_after_n_requests(server: StripeServer, sdk: stripe.StripeClient) -> None:
    server.die_after(1)
    sdk.v1.customers.create({"name": "One"})
    with pytest.raises(stripe.APIConnectionError):
        sdk.v1.customers.create({"name": "Two"})
    with pytest.raises(stripe.APIConnectionError):
        sdk.v1.customers.list()
    assert [customer["name"] for customer in server.of_kind("customer")] == ["One"]
    server.revive()
    assert len(sdk.v1.customers.list().data) == 1


def test_a_cut_request_may_have_been_carried_out(server: StripeServer, sdk: stripe.StripeClient) -> None:
    server.die_after(0, carried_out=True)
    with pytest.raises(stripe.APIConnectionError):
        sdk.v1.customers.create({"name": "Lost answer"}, {"idempotency_key": "customer:lost"})
    server.revive()
    assert [customer["name"] for customer in server.of_kind("customer")] == ["Lost answer"]
    again = sdk.v1.customers.create({"name": "Lost answer"}, {"idempotency_key": "customer:lost"})
    assert again.id == server.of_kind("customer")[0]["id"]


def test_account_links_onboard_the_account(server: StripeServer, sdk: stripe.StripeClient) -> None:
    account = sdk.v1.accounts.create({"type": "express", "country": "GB", "metadata": {"provider": "7"}})
    assert account.capabilities is not None
    assert account.capabilities.transfers == "inactive"
    link = sdk.v1.account_links.create({"account": account.id, "type": "account_onboarding",
                                        "refresh_url": "http://app.test/refresh", "return_url": "http://app.test/back"})
    assert link.url.startswith(server.url)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: object, **_kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(link.url, timeout=5)
    answer.value.close()
    assert answer.value.code == 302
    assert answer.value.headers["Location"] == "http://app.test/back"
    onboarded = sdk.v1.accounts.retrieve(account.id)
    assert onboarded.capabilities is not None
    assert onboarded.capabilities.transfers == "active"
    assert onboarded.details_submitted


def test_an_unknown_key_or_object_is_refused(server: StripeServer) -> None:
    wrong, http = _client(server, "rk_wrong")
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.customers.list()
    http.close()
    sdk, http = _client(server)
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.invoices.retrieve("in_missing")
    http.close()


def test_events_are_signed_as_stripe_signs_them(server: StripeServer, sdk: stripe.StripeClient) -> None:
    invoice, _vat = _invoice_with_lines(sdk)
    event = server.event("invoice.paid", sdk.v1.invoices.retrieve(invoice.id).to_dict())
    payload = json.dumps(event).encode()
    header = server.signature_header(payload, "whsec_test")
    parsed = stripe.Webhook.construct_event(payload.decode(), header, "whsec_test")
    assert parsed.type == "invoice.paid"
    assert parsed.data.object["id"] == invoice.id
    stale = server.signature_header(payload, "whsec_test", int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.decode(), stale, "whsec_test")


def test_more_than_250_items_are_refused(sdk: stripe.StripeClient) -> None:
    customer = sdk.v1.customers.create({"name": "Big"})
    invoice = sdk.v1.invoices.create({"customer": customer.id})
    for _ in range(250):
        sdk.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "amount": 1})
    with pytest.raises(stripe.InvalidRequestError, match="250"):
        sdk.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "amount": 1})
