"""The contract form of the console: dates, fees, VAT and a price per event kind on each of the force's pathways.

People type money in pounds (``70``, ``£70.00``, ``1,500.50``) and the
platform fee as a percentage (``2.5``); the form turns them into pence and
basis points, and says which field is wrong when it cannot. The service
(``billing.contracts``) checks everything again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, cast

from flask_babel import gettext as _
from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovSubmitInput, GovTextArea, GovTextInput
from wtforms import Field, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from diversion import words
from diversion.billing.contracts import NOTES_LENGTH, Terms, price_field
from diversion.billing.models import PRICED_KINDS, EventKind, VatTreatment
from diversion.catalogue.models import Provider
from diversion.forms import Form, GovDateField, label_of
from diversion.forms import lazy_gettext as _l

_POUNDS = re.compile(r"£?\s*(\d{1,3}(?:,\d{3})+|\d{1,9})(?:\.(\d{1,2}))?")
_PERCENT = re.compile(r"(\d{1,3})(?:\.(\d{1,2}))?\s*%?")


def pence_of(text: str) -> int | None:
    """``text`` in pounds and pence as pence (``£1,500.5`` is 150050), or None when it is not money."""
    found = _POUNDS.fullmatch(text.strip())
    if found is None:
        return None
    pounds = int(found[1].replace(",", ""))
    return pounds * 100 + int((found[2] or "0").ljust(2, "0"))


def pounds_of(pence: int) -> str:
    """Pence written back into a money field: ``70.00``."""
    return f"{Decimal(pence) / 100:.2f}"


def basis_points_of(text: str) -> int | None:
    """A percentage (``2.5``, ``2.5%``) as basis points (250), or None when it is not one."""
    found = _PERCENT.fullmatch(text.strip())
    if found is None:
        return None
    return int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))


# Basis points written for people and fields: ``2.5`` (250), ``10`` (1000) (the one place is ``words.percent``).
percent_of = words.percent


class _Money:
    """Money in pounds and pence, refused in whole sentences: ``negative`` when below nought,
    ``wrong`` when not money."""

    def __init__(self, negative: str, wrong: str) -> None:
        self.negative, self.wrong = negative, wrong

    def __call__(self, _form: Form, field: Field) -> None:
        text = (field.data or "").strip()
        if text.startswith(("-", "£-", "−")):
            raise ValidationError(str(self.negative))
        if text and pence_of(text) is None:
            raise ValidationError(str(self.wrong))


_FEE_TOO_LONG = _l("Enter the monthly fee in pounds and pence, like 1500.00")
_PERCENT_WORDS = _l("Enter the platform fee as a percentage, like 2.5")


def _percent(_form: Form, field: Field) -> None:
    if basis_points_of(field.data or "") is None:
        raise ValidationError(str(_PERCENT_WORDS))


class _ProviderField(SelectField):
    def pre_validate(self, form: Any) -> None:
        if self.data not in {str(choice[0]) for choice in self.iter_choices()} or not self.data:
            raise ValidationError(_("Choose one of the providers listed"))


class _VatField(RadioField):
    def pre_validate(self, form: Any) -> None:
        if self.data not in {v.value for v in VatTreatment}:
            raise ValidationError(_("Choose the VAT treatment"))


# How the date fields' messages call them, in the reader's language ("The start date must be a real date"):
# read when a message is written (``GovDateField`` takes the text of whatever it is given).
_START_DATE = cast(str, _l("the start date"))
_END_DATE = cast(str, _l("the end date"))


class ContractForm(Form):
    """A contract's terms; the price fields are added per force (``contract_form``)."""

    provider = _ProviderField(_l("Provider"), widget=GovSelect(),
                              validators=[InputRequired(message=_l("Choose a provider"))])
    starts_on = GovDateField(_l("Starts on"), format="%d %m %Y", called=_START_DATE,
                             description=_l("For example, 1 4 2027."),
                             validators=[InputRequired(message=_l("Enter the date the contract starts"))])
    ends_on = GovDateField(_l("Ends on (optional)"), format="%d %m %Y", called=_END_DATE,
                           description=_l("The contract's last day. Leave it empty for a contract until further "
                                          "notice."),
                           validators=[Optional()])
    monthly_fee = StringField(_l("Monthly fee (optional)"), widget=GovTextInput(),
                              description=_l("A fixed amount each month (a block grant), in pounds. Leave it empty "
                                             "for none."),
                              validators=[Optional(), Length(max=20, message=_FEE_TOO_LONG),
                                          _Money(_l("The monthly fee cannot be negative"),
                                                 _l("Enter the monthly fee in pounds and pence, like 70.00"))])
    vat = _VatField(_l("VAT"), widget=GovRadioInput(),
                     choices=[SelectChoice(v.value, label_of(v)) for v in VatTreatment],
                     validators=[InputRequired(message=_l("Choose the VAT treatment"))])
    platform_fee = StringField(_l("Platform fee"), widget=GovTextInput(),
                               description=_l("A percentage of the net amount, before VAT, kept by the platform."),
                               validators=[InputRequired(message=_l("Enter the platform fee")),
                                           Length(max=10, message=_PERCENT_WORDS), _percent])
    notes = TextAreaField(_l("Notes (optional)"), widget=GovTextArea(),
                          description=_l("Where the figures come from, for example that they are assumptions."),
                          validators=[Optional(), Length(max=NOTES_LENGTH,
                                                         message=_l("The notes must be %(max)s characters or fewer",
                                                                    max=NOTES_LENGTH))])
    submit = SubmitField(_l("Save contract"), widget=GovSubmitInput())

    pathways: Sequence[tuple[str, str]] = ()

    def price_fields(self) -> list[tuple[str, str, list[tuple[EventKind, Field]]]]:
        """For the template: each pathway (id, name) with its price fields by event kind."""
        return [(pathway, name, [(kind, self[price_field(kind, pathway)]) for kind in PRICED_KINDS])
                for pathway, name in self.pathways]

    def terms(self, provider_id: int) -> Terms:
        """What the (valid) form says, as the service's ``Terms``."""
        prices = {}
        for pathway, _name in self.pathways:
            for kind in PRICED_KINDS:
                raw = (self[price_field(kind, pathway)].data or "").strip()
                if raw:
                    prices[(kind, pathway)] = pence_of(raw) or 0
        starts_on: date | None = self.starts_on.data
        if starts_on is None:  # InputRequired has refused the form already
            raise ValueError("the form is not valid")
        return Terms(provider_id=provider_id, starts_on=starts_on, ends_on=self.ends_on.data,
                     monthly_fee_pence=pence_of(self.monthly_fee.data or "") or 0,
                     vat=VatTreatment(self.vat.data), platform_fee_basis_points=basis_points_of(
                         self.platform_fee.data or "") or 0, prices=prices, notes=(self.notes.data or "").strip())


def contract_form(pathways: Sequence[tuple[str, str]], providers: Sequence[Provider], *,
                  terms: Terms | None = None) -> ContractForm:
    """The form for a force with ``pathways`` (id, name) and ``providers``, filled with ``terms``
    when given (a change) unless the request sends the form."""
    fields: dict[str, Any] = {}
    for pathway, name in pathways:
        for kind in PRICED_KINDS:
            fields[price_field(kind, pathway)] = StringField(
                f"{kind.label} ({name})", widget=GovTextInput(),
                validators=[Optional(), _Money(
                    _("The price of %(kind)s on %(pathway)s cannot be negative", kind=kind.label.lower(), pathway=name),
                    _("Enter the price of %(kind)s on %(pathway)s in pounds and pence, like 70.00",
                      kind=kind.label.lower(), pathway=name))])
    form_class = type("ForceContractForm", (ContractForm,), {**fields, "pathways": tuple(pathways)})
    data: dict[str, Any] | None = None
    if terms is not None:
        data = {"provider": str(terms.provider_id), "starts_on": terms.starts_on, "ends_on": terms.ends_on,
                "monthly_fee": pounds_of(terms.monthly_fee_pence) if terms.monthly_fee_pence else "",
                "vat": terms.vat.value, "platform_fee": percent_of(terms.platform_fee_basis_points),
                "notes": terms.notes,
                **{price_field(kind, pathway): pounds_of(pence) for (kind, pathway), pence in terms.prices.items()}}
    form: ContractForm = form_class(data=data)
    form.provider.choices = [SelectChoice("", _("Choose a provider")),
                             *(SelectChoice(str(p.id), p.name) for p in providers)]
    return form
