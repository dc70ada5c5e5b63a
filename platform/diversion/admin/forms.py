"""Forms of the console's onboarding pages.

They check what a person can fix at once, with GOV.UK messages; the
services check everything again with the force file's own rules
(``forces.onboarding``).
"""

from __future__ import annotations

from dataclasses import asdict

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Regexp

from diversion.accounts.forms import invitee_fields
from diversion.catalogue.vocabulary import AREAS
from diversion.files import SLUG_PATTERN
from diversion.forces.forms import force_name_fields, names_entered, outcome_fields, scheme_name_field
from diversion.forces.onboarding import ForceDetails
from diversion.forms import Form
from diversion.forms import lazy_gettext as _l
from diversion.language import DESCRIBED


class ForceDetailsForm(Form):
    """The first step: who the force is. The address is asked for once (it cannot change)."""

    name, name_cy = force_name_fields()
    slug = StringField(
        _l("Address"), widget=GovTextInput(),
        description=_l("The force's pages will be at /address/: lower-case letters, digits and hyphens, "
                       "e.g. “cleveland”. It cannot change later."),
        validators=[InputRequired(message=_l("Enter an address")),
                    Length(max=63, message=_l("The address must be 63 characters or fewer")),
                    Regexp(SLUG_PATTERN, message=_l("Use lower-case letters, digits and single hyphens only"))])
    scheme_name = scheme_name_field()
    area = SelectField(
        _l("Police force area"), widget=GovSelect(),
        description=_l("The area the force covers: the catalogue's courses that serve it can be offered."),
        choices=[SelectChoice("", _l("Choose the force area")),
                 *(SelectChoice(k, v) for k, v in sorted(AREAS.items(), key=lambda item: item[1]))],
        validators=[InputRequired(message=_l("Choose the force area"))])
    languages = SelectMultipleField(
        _l("Languages"), widget=GovCheckboxesInput(), choices=[SelectChoice(k, v) for k, v in DESCRIBED.items()],
        validators=[InputRequired(message=_l("Choose at least one language"))])
    (completed_code, completed_label, not_completed_code, not_completed_label, completed_label_cy,
     not_completed_label_cy, not_completed_action) = outcome_fields()
    brand_colour = StringField(
        _l("Brand colour"), widget=GovTextInput(), description=_l("Written #rrggbb, e.g. #1d70b8."),
        validators=[InputRequired(message=_l("Enter the brand colour")),
                    Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Enter the brand colour as #rrggbb, e.g. #1d70b8"))])
    submit = SubmitField(_l("Save and continue"), widget=GovSubmitInput())

    def details(self, slug: str) -> ForceDetails:
        """What was entered, for the service; ``slug`` stands in when the form has no address field."""
        return ForceDetails(
            slug=(self.slug.data or "") if "slug" in self else slug, area=self.area.data or "",
            languages=list(self.languages.data or []), brand_colour=self.brand_colour.data or "",
            **asdict(names_entered(self)))


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
