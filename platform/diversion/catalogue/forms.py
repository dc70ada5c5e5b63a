"""Forms of the catalogue pages: providers and courses (platform admins), offerings (force admins).

The forms check what a person can fix at once, with GOV.UK messages; the
services check everything again with the catalogue file's own schema.
"""

from __future__ import annotations

from typing import Any

from flask_babel import LazyString
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from diversion.catalogue.vocabulary import (
    AREAS,
    COURSE_LANGUAGES,
    DELIVERY_LABELS,
    FORMAT_LABELS,
    KINDS,
    OLDEST_AGE,
    YOUNGEST_AGE,
)
from diversion.files import SLUG_PATTERN
from diversion.forms import Form, label_of
from diversion.forms import lazy_gettext as _l

SLUG_HINT = _l("Lower-case letters, digits and hyphens, e.g. “cranstoun-divert”. It cannot change later.")


class GovIntegerField(IntegerField):
    widget = GovTextInput()


def _slug_field(label: str | LazyString) -> StringField:
    return StringField(label, widget=GovTextInput(), description=SLUG_HINT, validators=[
        InputRequired(message=_l("Enter an address")),
        Length(max=63, message=_l("The address must be 63 characters or fewer")),
        Regexp(SLUG_PATTERN, message=_l("Use lower-case letters, digits and single hyphens only"))])


class ProviderForm(Form):
    slug = _slug_field(_l("Address"))
    name = StringField(_l("Name"), widget=GovTextInput(), validators=[
        InputRequired(message=_l("Enter the provider's name")),
        Length(max=200, message=_l("The name must be 200 characters or fewer"))])
    website = StringField(_l("Website (optional)"), widget=GovTextInput(), description=_l("Starting https://"),
                          validators=[
        Optional(), Length(max=300, message=_l("The website must be 300 characters or fewer")),
        Regexp(r"https://\S+", message=_l("Enter a web address starting https://"))])
    contact_email = StringField(_l("Contact email address (optional)"), widget=GovTextInput(), validators=[
        Optional(),
        Regexp(r"[^@\s]+@[^@\s]+\.[^@\s]+", message=_l("Enter an email address, like referrals@example.org")),
        Length(max=254, message=_l("The email address must be 254 characters or fewer"))])
    submit = SubmitField(_l("Save provider"), widget=GovSubmitInput())

    def data_for_service(self) -> dict[str, Any]:
        return {"slug": self.slug.data if "slug" in self else None, "name": self.name.data or "",
                "website": self.website.data or "", "contact_email": self.contact_email.data or ""}


class CourseForm(Form):
    slug = _slug_field(_l("Address"))
    provider = SelectField(_l("Provider"), widget=GovSelect(),
                           validators=[InputRequired(message=_l("Choose a provider"))])
    title = StringField(_l("Title"), widget=GovTextInput(), validators=[
        InputRequired(message=_l("Enter the course's title")),
        Length(max=200, message=_l("The title must be 200 characters or fewer"))])
    kinds = SelectMultipleField(
        _l("Pathway kinds served"), widget=GovCheckboxesInput(),
        choices=[SelectChoice(kind.value, label_of(info)) for kind, info in KINDS.items()],
        validators=[InputRequired(message=_l("Choose at least one pathway kind"))])
    format = RadioField(_l("Format"), widget=GovRadioInput(),
                        choices=[SelectChoice(k.value, v) for k, v in FORMAT_LABELS.items()],
                        validators=[InputRequired(message=_l("Choose the format"))])
    sessions = GovIntegerField(_l("Number of sessions"), validators=[
        InputRequired(message=_l("Enter the number of sessions")),
        NumberRange(min=1, max=50, message=_l("The number of sessions must be between 1 and 50"))])
    session_minutes = GovIntegerField(_l("Length of a session, in minutes"), validators=[
        InputRequired(message=_l("Enter the length of a session")),
        NumberRange(min=10, max=480, message=_l("A session must last between 10 and 480 minutes"))])
    delivery = SelectMultipleField(
        _l("Delivery"), widget=GovCheckboxesInput(),
        choices=[SelectChoice(k.value, v) for k, v in DELIVERY_LABELS.items()],
        validators=[InputRequired(message=_l("Choose how the course is delivered"))])
    min_age = GovIntegerField(_l("Youngest age"), validators=[
        InputRequired(message=_l("Enter the youngest age")),
        NumberRange(min=YOUNGEST_AGE, max=OLDEST_AGE,
                    message=_l("The youngest age must be between %(youngest)s and %(oldest)s",
                               youngest=YOUNGEST_AGE, oldest=OLDEST_AGE))])
    max_age = GovIntegerField(_l("Oldest age (optional)"), description=_l("Leave empty for no upper limit."),
                              validators=[
        Optional(), NumberRange(min=YOUNGEST_AGE, max=OLDEST_AGE,
                                message=_l("The oldest age must be between %(youngest)s and %(oldest)s",
                                           youngest=YOUNGEST_AGE, oldest=OLDEST_AGE))])
    languages = SelectMultipleField(
        _l("Languages"), widget=GovCheckboxesInput(), choices=[SelectChoice(k, v) for k, v in COURSE_LANGUAGES.items()],
        validators=[InputRequired(message=_l("Choose at least one language"))])
    areas = SelectMultipleField(
        _l("Areas served"), widget=GovCheckboxesInput(), choices=[SelectChoice(k, v) for k, v in AREAS.items()],
        description=_l("The police force areas where the course is delivered."),
        validators=[InputRequired(message=_l("Choose at least one area"))])
    description = TextAreaField(_l("Description"), widget=GovTextArea(), validators=[
        Optional(), Length(max=2000, message=_l("The description must be 2000 characters or fewer"))])
    title_cy = StringField(_l("Title in Welsh"), widget=GovTextInput(),
                           description=_l("For a course offered in Welsh: needed then, and only then."),
                           validators=[Optional(), Length(max=200, message=_l(
                               "The Welsh title must be 200 characters or fewer"))])
    description_cy = TextAreaField(_l("Description in Welsh"), widget=GovTextArea(), validators=[
        Optional(), Length(max=2000, message=_l("The Welsh description must be 2000 characters or fewer"))])
    submit = SubmitField(_l("Save course"), widget=GovSubmitInput())

    def data_for_service(self) -> dict[str, Any]:
        names = ("slug", "provider", "title", "kinds", "format", "sessions", "session_minutes", "delivery",
                 "min_age", "max_age", "languages", "areas", "description", "title_cy", "description_cy")
        data = {name: getattr(self, name).data for name in names if name in self}
        data["description"] = data["description"] or ""
        data["title_cy"] = data["title_cy"] or None  # left empty: the course has no Welsh
        data["description_cy"] = data["description_cy"] or None
        return data


class LocalDetailsForm(Form):
    venues = TextAreaField(_l("Venues (optional)"), widget=GovTextArea(),
                           description=_l("One a line: where people go."),
                           validators=[
                               Optional(), Length(max=1000, message=_l("The venues must be 1000 characters or fewer"))])
    booking_contact = StringField(
        _l("Booking contact (optional)"), widget=GovTextInput(),
        description=_l("Whom officers or the person contact to book, e.g. a phone number or email address."),
        validators=[Optional(), Length(max=300, message=_l("The booking contact must be 300 characters or fewer"))])
    notes = TextAreaField(_l("Notes (optional)"), widget=GovTextArea(), validators=[
        Optional(), Length(max=1000, message=_l("The notes must be 1000 characters or fewer"))])

    def venue_lines(self) -> list[str]:
        return [line.strip() for line in (self.venues.data or "").splitlines() if line.strip()]


class EditOfferingForm(LocalDetailsForm):
    submit = SubmitField(_l("Save changes"), widget=GovSubmitInput())


class AddOfferingForm(LocalDetailsForm):
    pathway = HiddenField()
    course = RadioField(_l("Course"), widget=GovRadioInput(), validators=[InputRequired(message=_l("Choose a course"))])
    submit = SubmitField(_l("Add offering"), widget=GovSubmitInput())


class ChoosePathwayForm(Form):
    class Meta:
        csrf = False  # a step asked for with GET; nothing changes

    pathway = RadioField(_l("Which pathway?"), widget=GovRadioInput(),
                         validators=[InputRequired(message=_l("Choose a pathway"))])
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())
