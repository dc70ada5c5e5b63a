"""Forms of the console's onboarding pages.

They check what a person can fix at once, with GOV.UK messages; the
services check everything again with the force file's own rules
(``forces.onboarding``).
"""

from __future__ import annotations

from flask_babel import LazyString
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, Regexp

from diversion.accounts.forms import invitee_fields
from diversion.catalogue.vocabulary import AREAS
from diversion.files import SLUG_PATTERN
from diversion.forces.onboarding import ForceDetails
from diversion.forms import Form
from diversion.forms import lazy_gettext as _l
from diversion.language import DESCRIBED
from diversion.tenancy.models import NonCompletionAction

# What a force does when a person does not complete, in plain words.
ACTION_LABELS = {
    NonCompletionAction.PROSECUTION: _l("Prosecution resumes"),
    NonCompletionAction.CHARGE_BY_POSTAL_REQUISITION: _l("Charge by postal requisition"),
    NonCompletionAction.COURT: _l("The case goes to court"),
    NonCompletionAction.NO_FURTHER_ACTION: _l("No further action"),
}


def _text(label: LazyString, missing: LazyString, *, limit: int = 200, hint: LazyString | str = "") -> StringField:
    return StringField(label, widget=GovTextInput(), description=hint, validators=[
        InputRequired(message=missing),
        Length(max=limit, message=_l("%(label)s must be %(limit)s characters or fewer", label=label, limit=limit))])


def _welsh(label: LazyString, *, limit: int = 200) -> StringField:
    """An optional label in Welsh, for a force that works in Welsh."""
    return StringField(label, widget=GovTextInput(), description=_l("For a force that works in Welsh: what its "
                                                                     "pages say in Welsh."), validators=[
        Optional(),
        Length(max=limit, message=_l("%(label)s must be %(limit)s characters or fewer", label=label, limit=limit))])


class ForceDetailsForm(Form):
    """The first step: who the force is. The address is asked for once (it cannot change)."""

    name = _text(_l("Force name"), _l("Enter the force's name"), hint=_l("As people know it, e.g. “Cleveland Police”."))
    name_cy = _welsh(_l("Force name in Welsh (optional)"))
    slug = StringField(
        _l("Address"), widget=GovTextInput(),
        description=_l("The force's pages will be at /address/: lower-case letters, digits and hyphens, "
                       "e.g. “cleveland”. It cannot change later."),
        validators=[InputRequired(message=_l("Enter an address")),
                    Length(max=63, message=_l("The address must be 63 characters or fewer")),
                    Regexp(SLUG_PATTERN, message=_l("Use lower-case letters, digits and single hyphens only"))])
    scheme_name = _text(_l("Scheme name"), _l("Enter the scheme's name"),
                        hint=_l("What the force calls its scheme, e.g. “Checkpoint”."))
    area = SelectField(
        _l("Police force area"), widget=GovSelect(),
        description=_l("The area the force covers: the catalogue's courses that serve it can be offered."),
        choices=[SelectChoice("", _l("Choose the force area")),
                 *(SelectChoice(k, v) for k, v in sorted(AREAS.items(), key=lambda item: item[1]))],
        validators=[InputRequired(message=_l("Choose the force area"))])
    languages = SelectMultipleField(
        _l("Languages"), widget=GovCheckboxesInput(), choices=[SelectChoice(k, v) for k, v in DESCRIBED.items()],
        validators=[InputRequired(message=_l("Choose at least one language"))])
    completed_code = _text(_l("Code on completion"), _l("Enter the code recorded on completion"), limit=40,
                           hint=_l("The outcome code the force records when a person completes, e.g. “outcome-22”."))
    completed_label = _text(_l("What the code on completion means"), _l("Enter what the code on completion means"),
                            hint=_l("e.g. “No further action (Outcome 22)”."))
    not_completed_code = _text(_l("Code on non-completion"), _l("Enter the code recorded on non-completion"),
                               limit=40,
                               hint=_l("The code recorded when a person does not complete, e.g. “prosecution”."))
    not_completed_label = _text(_l("What the code on non-completion means"),
                                _l("Enter what the code on non-completion means"),
                                hint=_l("e.g. “Prosecution resumes”."))
    completed_label_cy = _welsh(_l("What the code on completion means, in Welsh (optional)"))
    not_completed_label_cy = _welsh(_l("What the code on non-completion means, in Welsh (optional)"))
    not_completed_action = RadioField(
        _l("What happens when a person does not complete"), widget=GovRadioInput(),
        choices=[SelectChoice(k.value, v) for k, v in ACTION_LABELS.items()],
        validators=[InputRequired(message=_l("Choose what happens when a person does not complete"))])
    brand_colour = StringField(
        _l("Brand colour"), widget=GovTextInput(), description=_l("Written #rrggbb, e.g. #1d70b8."),
        validators=[InputRequired(message=_l("Enter the brand colour")),
                    Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Enter the brand colour as #rrggbb, e.g. #1d70b8"))])
    submit = SubmitField(_l("Save and continue"), widget=GovSubmitInput())

    def details(self, slug: str) -> ForceDetails:
        """What was entered, for the service; ``slug`` stands in when the form has no address field."""
        return ForceDetails(
            name=self.name.data or "", slug=(self.slug.data or "") if "slug" in self else slug,
            scheme_name=self.scheme_name.data or "", area=self.area.data or "",
            languages=list(self.languages.data or []), completed_code=self.completed_code.data or "",
            completed_label=self.completed_label.data or "", not_completed_code=self.not_completed_code.data or "",
            not_completed_label=self.not_completed_label.data or "",
            not_completed_action=self.not_completed_action.data or "", brand_colour=self.brand_colour.data or "",
            completed_label_cy=self.completed_label_cy.data or "",
            not_completed_label_cy=self.not_completed_label_cy.data or "", name_cy=self.name_cy.data or "")


class PolicyTemplateForm(Form):
    """The second step: which policy to start from (choices: ``copy:<force>`` or ``blank``)."""

    template = RadioField(_l("Which policy will the force start from?"), widget=GovRadioInput(),
                          validators=[InputRequired(message=_l("Choose a policy to start from"))])
    submit = SubmitField(_l("Use this policy"), widget=GovSubmitInput())


class FirstAdminForm(Form):
    """The last step: who will be the force's first force admin."""

    name, email = invitee_fields()
    submit = SubmitField(_l("Invite them"), widget=GovSubmitInput())


class OfferingsForm(Form):
    """The third step: the courses chosen, as ``<pathway>:<course id>`` (drawn by the page, grouped by pathway)."""

    offerings = SelectMultipleField(_l("Courses offered"), validate_choice=False)
    submit = SubmitField(_l("Save the courses offered"), widget=GovSubmitInput())
