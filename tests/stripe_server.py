"""A local, stateful stand-in for the part of Stripe's REST API that billing uses.

The official ``stripe`` SDK talks to it over HTTP on 127.0.0.1 (point the
client's ``base_addresses`` at ``server.url``). Every answer is built from
Stripe's own example objects (``fixtures3.json`` in ``../shared/stripe``),
with the request's fields and fresh ids filled in, and what a call creates
is kept, so that later calls are answered from the store:

- customers (also searched by metadata), connected accounts and their
  Account Links (the link's address is a page of this server that marks the
  account able to receive transfers and goes back to ``return_url``), tax
  rates, invoice items, invoices with their lines (finalize, send, pay,
  void), Stripe's limit of 250 items on one invoice included;
- a repeated ``Idempotency-Key`` gets the stored answer again (another
  request under the same key is refused, as Stripe does); ``forget_keys``
  drops them all, as Stripe does after 24 hours;
- every request is recorded (``requests``: method, path, form fields,
  idempotency key, connected account);
- a test can change a stored line (``change_line``), an account
  (``set_account``), or make the server stop answering after N more requests
  (``die_after``: the request that crosses the line is cut off, with or
  without having been carried out, and so is everything after it until
  ``revive``);
- webhook events can be built from the fixtures and signed as Stripe signs
  them (``event``, ``signature_header``, ``deliver``).

Run it on its own for ``make run``: ``python -m tests.stripe_server --port 12111``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "stripe" / "fixtures3.json"
MAX_INVOICE_ITEMS = 250  # Stripe refuses more items on one invoice


class StripeError(Exception):
    def __init__(self, status: int, message: str, *, code: str = "", kind: str = "invalid_request_error",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind, self.param = status, message, code, kind, param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it. ``fields`` are the form fields (or query string) as sent,
    e.g. ``{"metadata[statement]": "...", "tax_rates[0]": "txr_..."}``."""

    method: str
    path: str
    fields: dict[str, str]
    idempotency_key: str | None
    stripe_account: str | None = None
    replayed: bool = False  # answered from the stored answer of its idempotency key

    @property
    def call(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class _Stored:
    method: str
    path: str
    fields: dict[str, str]
    status: int
    body: dict[str, Any]


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields as Stripe reads them: ``a[b][c]=v`` is ``{"a": {"b": {"c": v}}}`` and numbered
    keys (``tax_rates[0]``) make lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        if not parts:
            continue
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(key.isdigit() for key in node):
            return [_lists(node[key]) for key in sorted(node, key=int)]
        return {key: _lists(value) for key, value in node.items()}
    return node


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", param=param) from None


def _truth(value: Any) -> bool:
    return str(value).lower() == "true"


def _half_away(amount: int, percentage: float) -> int:
    exact = abs(amount) * percentage / 100
    rounded = int(exact) + (1 if exact - int(exact) >= 0.5 else 0)
    return rounded if amount >= 0 else -rounded


class StripeServer:
    """The server and its store. ``start`` it (or use it as a context manager), then give the SDK ``url``."""

    def __init__(self, port: int = 0, *, fixtures: Path = FIXTURES, api_key_prefix: str = "sk_") -> None:
        self.fixtures: dict[str, Any] = json.loads(fixtures.read_text())["resources"]
        self.api_key_prefix = api_key_prefix
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.objects: dict[str, dict[str, Any]] = {}  # by id, every kind
        self._items: dict[str, list[dict[str, Any]]] = {}  # invoice items by invoice id
        self.sent_invoices: list[str] = []  # ids, in the order they were sent
        self._keys: dict[str, _Stored] = {}
        self._ids = itertools.count(1)
        self._clock = itertools.count(int(time.time()))
        self._cut_after: int | None = None
        self._carry_out_the_cut_one = False
        self._cut = False
        self._http = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ running

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StripeServer:
        self._thread = threading.Thread(target=self._http.serve_forever, name="stripe-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> StripeServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ what tests steer

    def forget_keys(self) -> None:
        """Forget every idempotency key, as Stripe does after about 24 hours."""
        with self.lock:
            self._keys.clear()

    def die_after(self, count: int, *, carried_out: bool = False) -> None:
        """Answer ``count`` more requests, then cut the connection of every later one until ``revive``.
        With ``carried_out`` the first cut request is still carried out (the answer is lost on the way)."""
        with self.lock:
            self._cut_after = len(self.requests) + count
            self._carry_out_the_cut_one = carried_out
            self._cut = False

    def revive(self) -> None:
        with self.lock:
            self._cut_after, self._cut = None, False

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def calls(self) -> list[str]:
        """``METHOD /path`` of each request so far."""
        return [each.call for each in self.requests]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Stored objects of one kind (``customer``, ``invoice``, ``invoiceitem``, ...), oldest first."""
        with self.lock:
            return [obj for obj in self.objects.values() if obj["object"] == kind]

    def set_account(self, account_id: str, *, transfers: bool = True, details_submitted: bool = True) -> None:
        """Make a connected account able (or not) to receive transfers."""
        with self.lock:
            account = self._get(account_id, "account")
            account["capabilities"]["transfers"] = "active" if transfers else "inactive"
            account["details_submitted"] = details_submitted
            account["payouts_enabled"] = transfers
            account["charges_enabled"] = transfers

    def change_line(self, invoice_id: str, index: int = 0, *, quantity: int | None = None,
                    unit_amount: int | None = None) -> dict[str, Any]:
        """Change a stored line of an invoice (and its item), as if someone edited it on Stripe."""
        with self.lock:
            invoice = self._get(invoice_id, "invoice")
            item = self._items_of(invoice_id)[index]
            if quantity is not None:
                item["quantity"] = quantity
            if unit_amount is not None:
                item["pricing"]["unit_amount_decimal"] = str(unit_amount)
            item["amount"] = item["quantity"] * int(item["pricing"]["unit_amount_decimal"])
            self._total(invoice)
            return invoice

    # ------------------------------------------------------------ webhooks

    def event(self, kind: str, obj: Mapping[str, Any], *, event_id: str | None = None,
              created: int | None = None) -> dict[str, Any]:
        """A Stripe event (the fixture, filled in) about ``obj``."""
        event = copy.deepcopy(self.fixtures["event"])
        event.update(id=event_id or self._new_id("evt"), type=kind, created=created or int(time.time()),
                     data={"object": json.loads(json.dumps(dict(obj), default=str))}, livemode=False, api_version=None)
        return event

    @staticmethod
    def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
        """``Stripe-Signature`` as Stripe writes it: ``t=<time>,v1=<HMAC-SHA256 of "t.payload">``."""
        moment = int(time.time()) if timestamp is None else timestamp
        signed = f"{moment}.".encode() + payload
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={moment},v1={digest}"

    def deliver(self, url: str, event: Mapping[str, Any], secret: str, *,
                timestamp: int | None = None) -> tuple[int, bytes]:
        """POST a signed event to a running endpoint; its status and body."""
        payload = json.dumps(event).encode()
        request = urllib.request.Request(url, data=payload, method="POST", headers={  # noqa: S310 - tests' own
            "Content-Type": "application/json", "Stripe-Signature": self.signature_header(payload, secret, timestamp)})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status, answer.read()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read()

    # ------------------------------------------------------------ handling

    def handle(self, method: str, target: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any] | None:
        """The status and JSON answer to one request; None: cut the connection."""
        parts = urlsplit(target)
        pairs = parse_qsl(body.decode() if method == "POST" else parts.query, keep_blank_values=True)
        fields = dict(pairs)
        key = headers.get("Idempotency-Key")
        with self.lock:
            number = len(self.requests) + 1
            cut = self._cut or (self._cut_after is not None and number > self._cut_after)
            carried_out = cut and not self._cut and self._carry_out_the_cut_one
            self.requests.append(Recorded(method, parts.path, fields, key, headers.get("Stripe-Account")))
            if cut and not carried_out:
                self._cut = True
                return None
            answer = self._answer(method, parts.path, pairs, fields, key, headers)
            if cut:
                self._cut = True
                return None
            return answer

    def _answer(self, method: str, path: str, pairs: list[tuple[str, str]], fields: dict[str, str],
                key: str | None, headers: Mapping[str, str]) -> tuple[int, Any]:
        if method == "GET" and path.startswith("/connect/onboard/"):
            return self._onboard(path.rsplit("/", 1)[-1], fields)
        authorization = headers.get("Authorization", "")
        if not authorization.startswith(f"Bearer {self.api_key_prefix}"):
            return 401, StripeError(401, "Invalid API Key provided.", kind="invalid_request_error").body()
        if method == "POST" and key:
            stored = self._keys.get(key)
            if stored is not None:
                if (stored.method, stored.path, stored.fields) != (method, path, fields):
                    error = StripeError(400, "Keys for idempotent requests can only be used with the same "
                                        "parameters they were first used with.", kind="idempotency_error")
                    return 400, error.body()
                self.requests[-1] = Recorded(method, path, fields, key, headers.get("Stripe-Account"), replayed=True)
                return stored.status, copy.deepcopy(stored.body)
        try:
            status, answer = 200, self._route(method, path, nest(pairs))
        except StripeError as error:
            status, answer = error.status, error.body()
        if method == "POST" and key and status != 401:
            self._keys[key] = _Stored(method, path, fields, status, copy.deepcopy(answer))
        return status, answer

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911, PLR0912
        segments = path.strip("/").split("/")
        if not segments or segments[0] != "v1" or len(segments) < 2:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        resource, rest = segments[1], segments[2:]
        if resource == "customers":
            if method == "POST" and not rest:
                return self._create("customer", "cus", params, ("name", "email", "description"))
            if method == "GET" and rest == ["search"]:
                return self._search("customer", params.get("query", ""), path)
            if method == "GET" and not rest:
                return self._list("customer", params, path)
            if method == "GET" and len(rest) == 1:
                return self._get(rest[0], "customer")
        if resource == "accounts":
            if method == "POST" and not rest:
                return self._create_account(params)
            if method == "GET" and len(rest) == 1:
                return self._get(rest[0], "account")
            if method == "POST" and len(rest) == 1:
                return self._update(rest[0], "account", params)
        if resource == "account_links" and method == "POST" and not rest:
            return self._account_link(params)
        if resource == "tax_rates":
            if method == "POST" and not rest:
                return self._create_tax_rate(params)
            if method == "GET" and not rest:
                return self._list("tax_rate", params, path, active=params.get("active"))
            if method == "GET" and len(rest) == 1:
                return self._get(rest[0], "tax_rate")
        if resource == "invoiceitems":
            if method == "POST" and not rest:
                return self._create_item(params)
            if method == "GET" and not rest:
                return self._list("invoiceitem", params, path, invoice=params.get("invoice"),
                                  customer=params.get("customer"))
            if method == "GET" and len(rest) == 1:
                return self._get(rest[0], "invoiceitem")
        if resource == "invoices":
            if method == "POST" and not rest:
                return self._create_invoice(params)
            if method == "GET" and not rest:
                return self._list("invoice", params, path, customer=params.get("customer"),
                                  status=params.get("status"))
            if method == "GET" and len(rest) == 1:
                return self._total(self._get(rest[0], "invoice"))
            if method == "GET" and len(rest) == 2 and rest[1] == "lines":
                invoice = self._total(self._get(rest[0], "invoice"))
                return self._page(invoice["lines"]["data"], params, f"/v1/invoices/{rest[0]}/lines", newest_first=False)
            if method == "POST" and len(rest) == 2:
                return self._invoice_action(rest[0], rest[1], params)
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    # ------------------------------------------------------------ the store

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test{next(self._ids):06d}{secrets.token_hex(4)}"

    def _now(self) -> int:
        return next(self._clock)

    def _from_fixture(self, kind: str, prefix: str) -> dict[str, Any]:
        obj = copy.deepcopy(self.fixtures[kind])
        obj.update(id=self._new_id(prefix), livemode=False, metadata={})
        if "created" in obj:
            obj["created"] = self._now()
        return obj

    def _get(self, object_id: str, kind: str) -> dict[str, Any]:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")
        return obj

    def _keep(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def _create(self, kind: str, prefix: str, params: dict[str, Any], copied: tuple[str, ...]) -> dict[str, Any]:
        obj = self._from_fixture(kind, prefix)
        for name in copied:
            if name in params:
                obj[name] = params[name]
        obj["metadata"] = dict(params.get("metadata") or {})
        if kind == "customer":
            obj.update(currency=None, discount=None, invoice_prefix=obj["id"][-8:].upper())
        return self._keep(obj)

    def _update(self, object_id: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        obj = self._get(object_id, kind)
        obj["metadata"].update(params.get("metadata") or {})
        for name, value in params.items():
            if name != "metadata" and not isinstance(value, dict):
                obj[name] = value
        return obj

    def _create_account(self, params: dict[str, Any]) -> dict[str, Any]:
        account = self._from_fixture("account", "acct")
        account.update(country=params.get("country", "GB"), default_currency="gbp", email=params.get("email"),
                       metadata=dict(params.get("metadata") or {}), details_submitted=False,
                       charges_enabled=False, payouts_enabled=False)
        account["capabilities"] = {"transfers": "inactive"}
        if isinstance(params.get("controller"), dict):
            account["controller"] = {**account.get("controller", {}), **params["controller"]}
        account["external_accounts"]["url"] = f"/v1/accounts/{account['id']}/external_accounts"
        return self._keep(account)

    def _account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        account_id = params.get("account", "")
        self._get(account_id, "account")
        for name in ("refresh_url", "return_url", "type"):
            if not params.get(name):
                raise StripeError(400, f"Missing required param: {name}.", param=name)
        link = copy.deepcopy(self.fixtures["account_link"])
        created = self._now()
        query = urlencode({"return_url": params["return_url"], "refresh_url": params["refresh_url"]})
        link.update(created=created, expires_at=created + 300, url=f"{self.url}/connect/onboard/{account_id}?{query}")
        return link

    def _onboard(self, account_id: str, fields: dict[str, str]) -> tuple[int, Any]:
        """The Account Link's page: the provider 'completes' onboarding and goes back to the platform."""
        if account_id not in self.objects:
            return 404, {"error": {"type": "invalid_request_error", "message": "No such account"}}
        self.set_account(account_id, transfers=True, details_submitted=True)
        return 302, {"location": fields.get("return_url", "/")}

    def _create_tax_rate(self, params: dict[str, Any]) -> dict[str, Any]:
        if "percentage" not in params or "display_name" not in params:
            raise StripeError(400, "Missing required param: percentage.", param="percentage")
        rate = self._from_fixture("tax_rate", "txr")
        rate.update(percentage=float(params["percentage"]), display_name=params["display_name"],
                    inclusive=_truth(params.get("inclusive", "false")), country=params.get("country"),
                    jurisdiction=params.get("jurisdiction"), tax_type=params.get("tax_type"),
                    description=params.get("description"), metadata=dict(params.get("metadata") or {}),
                    active=True, flat_amount=None, effective_percentage=float(params["percentage"]))
        return self._keep(rate)

    def _create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        if not customer:
            raise StripeError(400, "Missing required param: customer.", param="customer")
        self._get(customer, "customer")
        collection = params.get("collection_method", "charge_automatically")
        if collection == "send_invoice" and "days_until_due" not in params and "due_date" not in params:
            raise StripeError(400, "Missing required param: days_until_due.", param="days_until_due")
        transfer = params.get("transfer_data") or {}
        if transfer:
            self._get(transfer.get("destination", ""), "account")
        invoice = self._from_fixture("invoice", "in")
        invoice.update(
            customer=customer, collection_method=collection, status="draft", currency=params.get("currency", "gbp"),
            days_until_due=_int(params["days_until_due"], "days_until_due") if "days_until_due" in params else None,
            due_date=None, auto_advance=_truth(params.get("auto_advance", "false")),
            application_fee_amount=(_int(params["application_fee_amount"], "application_fee_amount")
                                    if "application_fee_amount" in params else None),
            transfer_data=({"destination": transfer["destination"], "amount": None} if transfer else None),
            metadata=dict(params.get("metadata") or {}), description=params.get("description"),
            payment_settings={**invoice.get("payment_settings", {}), **(params.get("payment_settings") or {})},
            number=None, amount_paid=0, attempted=False, hosted_invoice_url=None, invoice_pdf=None,
            last_finalization_error=None, status_transitions={"finalized_at": None, "paid_at": None,
                                                              "voided_at": None, "marked_uncollectible_at": None},
            lines={"object": "list", "data": [], "has_more": False, "total_count": 0,
                   "url": f"/v1/invoices/{'{}'}/lines"},
        )
        invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
        if params.get("pending_invoice_items_behavior", "exclude") == "include":
            for item in self.of_kind("invoiceitem"):
                if item["customer"] == customer and item["invoice"] is None:
                    item["invoice"] = invoice["id"]
                    self._items.setdefault(invoice["id"], []).append(item)
        self._keep(invoice)
        return self._total(invoice)

    def _create_item(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        if not customer:
            raise StripeError(400, "Missing required param: customer.", param="customer")
        self._get(customer, "customer")
        invoice_id = params.get("invoice")
        if invoice_id:
            invoice = self._get(invoice_id, "invoice")
            if invoice["status"] != "draft":
                raise StripeError(400, f"Invoice {invoice_id} is not a draft: items cannot be added.",
                                  code="invoice_not_editable", param="invoice")
            if invoice["customer"] != customer:
                raise StripeError(400, "The invoice belongs to another customer.", param="invoice")
            if len(self._items_of(invoice_id)) >= MAX_INVOICE_ITEMS:
                raise StripeError(400, f"An invoice cannot have more than {MAX_INVOICE_ITEMS} items.",
                                  code="invoice_too_many_items", param="invoice")
        quantity = _int(params.get("quantity", "1"), "quantity")
        if "unit_amount_decimal" in params:
            unit = _int(params["unit_amount_decimal"], "unit_amount_decimal")
            amount = unit * quantity
        elif "amount" in params:
            amount = _int(params["amount"], "amount")
            unit = amount // max(quantity, 1)
        else:
            raise StripeError(400, "Missing required param: amount or unit_amount_decimal.", param="amount")
        for rate_id in params.get("tax_rates") or []:
            self._get(rate_id, "tax_rate")
        item = self._from_fixture("invoiceitem", "ii")
        item.update(customer=customer, invoice=invoice_id, quantity=quantity, amount=amount,
                    currency=params.get("currency", "gbp"), description=params.get("description"),
                    metadata=dict(params.get("metadata") or {}), tax_rates=list(params.get("tax_rates") or []),
                    parent=None, net_amount=amount, quantity_decimal=str(quantity), date=self._now(),
                    pricing={"type": "price_details", "price_details": None, "unit_amount_decimal": str(unit)})
        self._keep(item)
        if invoice_id:
            self._items.setdefault(invoice_id, []).append(item)
        return item

    def _items_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return self._items.get(invoice_id, [])

    def _total(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """The invoice's lines from its items, its taxes and totals."""
        lines, subtotal, tax_total = [], 0, 0
        for item in self._items_of(invoice["id"]):
            line = copy.deepcopy(self.fixtures["line_item"])
            taxes = []
            for rate_id in item["tax_rates"]:
                rate = self.objects[rate_id]
                tax = _half_away(item["amount"], rate["percentage"])
                taxes.append({"amount": tax, "tax_behavior": "exclusive", "taxable_amount": item["amount"],
                              "type": "tax_rate_details", "tax_rate_details": {"tax_rate": rate_id},
                              "taxability_reason": "standard_rated"})
                tax_total += tax
            subtotal += item["amount"]
            line.update(id=f"il_{item['id']}", invoice=invoice["id"], amount=item["amount"],
                        quantity=item["quantity"], description=item["description"], currency=item["currency"],
                        metadata=dict(item["metadata"]), taxes=taxes, subtotal=item["amount"],
                        pricing={"type": "price_details", "price_details": None,
                                 "unit_amount_decimal": item["pricing"]["unit_amount_decimal"]},
                        parent={"type": "invoice_item_details", "subscription_item_details": None,
                                "invoice_item_details": {"invoice_item": item["id"], "proration": False,
                                                         "proration_details": None, "subscription": None}})
            lines.append(line)
        total = subtotal + tax_total
        invoice["lines"].update(data=lines, total_count=len(lines), has_more=False)
        invoice.update(subtotal=subtotal, subtotal_excluding_tax=subtotal, total=total, total_excluding_tax=subtotal,
                       total_taxes=[{"amount": tax_total, "tax_behavior": "exclusive", "type": "tax_rate_details"}]
                       if tax_total else [],
                       amount_due=total, amount_remaining=total - invoice.get("amount_paid", 0))
        return invoice

    def _invoice_action(self, invoice_id: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        invoice = self._total(self._get(invoice_id, "invoice"))
        status = invoice["status"]
        if action == "finalize":
            if status != "draft":
                raise StripeError(400, f"This invoice is already finalized ({status}).",
                                  code="invoice_unexpected_state")
            fee = invoice.get("application_fee_amount")
            if fee is not None and fee > max(invoice["total"], 0):
                raise StripeError(400, "The application fee cannot exceed the invoice's total.",
                                  param="application_fee_amount")
            now = self._now()
            invoice.update(status="open", number=f"{invoice['id'][-8:].upper()}-0001",
                           auto_advance=_truth(params.get("auto_advance", str(invoice["auto_advance"]).lower())),
                           effective_at=now, hosted_invoice_url=f"{self.url}/invoice/{invoice_id}")
            invoice["status_transitions"]["finalized_at"] = now
            if invoice["days_until_due"] is not None:
                invoice["due_date"] = now + invoice["days_until_due"] * 86400
            return invoice
        if action == "send":
            if status != "open":
                raise StripeError(400, "Only open invoices can be sent.", code="invoice_unexpected_state")
            self.sent_invoices.append(invoice_id)
            return invoice
        if action == "pay":
            if status != "open":
                raise StripeError(400, "Only open invoices can be paid.", code="invoice_unexpected_state")
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, attempted=True)
            invoice["status_transitions"]["paid_at"] = self._now()
            return invoice
        if action == "void":
            if status not in {"open", "uncollectible"}:
                raise StripeError(400, "Only open invoices can be voided.", code="invoice_unexpected_state")
            invoice["status"] = "void"
            invoice["status_transitions"]["voided_at"] = self._now()
            return invoice
        raise StripeError(404, f"Unrecognized request URL (POST: /v1/invoices/{invoice_id}/{action}).")

    # ------------------------------------------------------------ lists

    def _list(self, kind: str, params: dict[str, Any], url: str, **filters: Any) -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind)
                 if all(value is None or str(obj.get(name)).lower() == str(value).lower()
                        for name, value in filters.items())]
        if kind == "invoice":
            found = [self._total(invoice) for invoice in found]
        return self._page(found, params, url, newest_first=True)

    def _page(self, found: list[dict[str, Any]], params: dict[str, Any], url: str, *,
              newest_first: bool) -> dict[str, Any]:
        ordered = list(reversed(found)) if newest_first else list(found)
        limit = max(1, min(_int(params.get("limit", "10"), "limit"), 100))
        after = params.get("starting_after")
        if after:
            ids = [obj["id"] for obj in ordered]
            if after not in ids:
                raise StripeError(400, f"No such object: '{after}'", param="starting_after")
            ordered = ordered[ids.index(after) + 1:]
        return {"object": "list", "url": url, "has_more": len(ordered) > limit,
                "data": copy.deepcopy(ordered[:limit])}

    def _search(self, kind: str, query: str, url: str) -> dict[str, Any]:
        """Search by ``metadata['name']:'value'`` clauses joined with AND (the part of Stripe's query
        language billing uses)."""
        clauses = re.findall(r"metadata\[['\"]([^'\"]+)['\"]\]\s*:\s*['\"]([^'\"]*)['\"]", query)
        if not clauses:
            raise StripeError(400, f"Unsupported search query: {query}", param="query")
        found = [obj for obj in self.of_kind(kind)
                 if all(obj.get("metadata", {}).get(name) == value for name, value in clauses)]
        return {"object": "search_result", "url": url, "has_more": False, "next_page": None,
                "data": copy.deepcopy(found)}

    def iter_requests(self, call: str) -> Iterator[Recorded]:
        """The recorded requests of one ``METHOD /path``."""
        return (each for each in list(self.requests) if each.call == call)


def _handler(server: StripeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

        def log_message(self, *_args: Any) -> None:  # quiet
            return

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = server.handle(method, self.path, body, dict(self.headers.items()))
            if answer is None:  # cut off: the client sees the connection drop
                self.close_connection = True
                self.connection.close()
                return
            status, payload = answer
            if status == 302:
                self.send_response(302)
                self.send_header("Location", payload["location"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local Stripe API for development (no network).")
    parser.add_argument("--port", type=int, default=12111)
    options = parser.parse_args(argv)
    server = StripeServer(options.port)
    print(f"Local Stripe server on {server.url} (STRIPE_API_BASE={server.url}, any sk_ key)")  # noqa: T201
    try:
        server._http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._http.server_close()


if __name__ == "__main__":
    main()
