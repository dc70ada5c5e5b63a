"""Forms of the catalogue pages: providers and courses (platform admins), offerings (force admins).

The forms check what a person can fix at once, with GOV.UK messages; the
services check everything again with the catalogue file's own schema.
"""

from __future__ import annotations

from typing import Any

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
from diversion.forms import Form

SLUG_HINT = "Lower-case letters, digits and hyphens, e.g. “cranstoun-divert”. It cannot change later."


class GovIntegerField(IntegerField):
    widget = GovTextInput()


def _slug_field(label: str) -> StringField:
    return StringField(label, widget=GovTextInput(), description=SLUG_HINT, validators=[
        InputRequired(message="Enter an address"), Length(max=63, message="The address must be 63 characters or fewer"),
        Regexp(SLUG_PATTERN, message="Use lower-case letters, digits and single hyphens only")])


class ProviderForm(Form):
    slug = _slug_field("Address")
    name = StringField("Name", widget=GovTextInput(), validators=[
        InputRequired(message="Enter the provider's name"),
        Length(max=200, message="The name must be 200 characters or fewer")])
    website = StringField("Website (optional)", widget=GovTextInput(), description="Starting https://", validators=[
        Optional(), Length(max=300, message="The website must be 300 characters or fewer"),
        Regexp(r"https://\S+", message="Enter a web address starting https://")])
    contact_email = StringField("Contact email address (optional)", widget=GovTextInput(), validators=[
        Optional(), Regexp(r"[^@\s]+@[^@\s]+\.[^@\s]+", message="Enter an email address, like referrals@example.org"),
        Length(max=254, message="The email address must be 254 characters or fewer")])
    submit = SubmitField("Save provider", widget=GovSubmitInput())

    def data_for_service(self) -> dict[str, Any]:
        return {"slug": self.slug.data if "slug" in self else None, "name": self.name.data or "",
                "website": self.website.data or "", "contact_email": self.contact_email.data or ""}


class CourseForm(Form):
    slug = _slug_field("Address")
    provider = SelectField("Provider", widget=GovSelect(), validators=[InputRequired(message="Choose a provider")])
    title = StringField("Title", widget=GovTextInput(), validators=[
        InputRequired(message="Enter the course's title"),
        Length(max=200, message="The title must be 200 characters or fewer")])
    kinds = SelectMultipleField(
        "Pathway kinds served", widget=GovCheckboxesInput(),
        choices=[SelectChoice(kind.value, info.label) for kind, info in KINDS.items()],
        validators=[InputRequired(message="Choose at least one pathway kind")])
    format = RadioField("Format", widget=GovRadioInput(),
                        choices=[SelectChoice(k.value, v) for k, v in FORMAT_LABELS.items()],
                        validators=[InputRequired(message="Choose the format")])
    sessions = GovIntegerField("Number of sessions", validators=[
        InputRequired(message="Enter the number of sessions"),
        NumberRange(min=1, max=50, message="The number of sessions must be between 1 and 50")])
    session_minutes = GovIntegerField("Length of a session, in minutes", validators=[
        InputRequired(message="Enter the length of a session"),
        NumberRange(min=10, max=480, message="A session must last between 10 and 480 minutes")])
    delivery = SelectMultipleField(
        "Delivery", widget=GovCheckboxesInput(), choices=[SelectChoice(k.value, v) for k, v in DELIVERY_LABELS.items()],
        validators=[InputRequired(message="Choose how the course is delivered")])
    min_age = GovIntegerField("Youngest age", validators=[
        InputRequired(message="Enter the youngest age"),
        NumberRange(min=YOUNGEST_AGE, max=OLDEST_AGE,
                    message=f"The youngest age must be between {YOUNGEST_AGE} and {OLDEST_AGE}")])
    max_age = GovIntegerField("Oldest age (optional)", description="Leave empty for no upper limit.", validators=[
        Optional(), NumberRange(min=YOUNGEST_AGE, max=OLDEST_AGE,
                                message=f"The oldest age must be between {YOUNGEST_AGE} and {OLDEST_AGE}")])
    languages = SelectMultipleField(
        "Languages", widget=GovCheckboxesInput(), choices=[SelectChoice(k, v) for k, v in COURSE_LANGUAGES.items()],
        validators=[InputRequired(message="Choose at least one language")])
    areas = SelectMultipleField(
        "Areas served", widget=GovCheckboxesInput(), choices=[SelectChoice(k, v) for k, v in AREAS.items()],
        description="The police force areas where the course is delivered.",
        validators=[InputRequired(message="Choose at least one area")])
    description = TextAreaField("Description", widget=GovTextArea(), validators=[
        Optional(), Length(max=2000, message="The description must be 2000 characters or fewer")])
    submit = SubmitField("Save course", widget=GovSubmitInput())

    def data_for_service(self) -> dict[str, Any]:
        names = ("slug", "provider", "title", "kinds", "format", "sessions", "session_minutes", "delivery",
                 "min_age", "max_age", "languages", "areas", "description")
        data = {name: getattr(self, name).data for name in names if name in self}
        data["description"] = data["description"] or ""
        return data


class LocalDetailsForm(Form):
    venues = TextAreaField("Venues (optional)", widget=GovTextArea(), description="One a line: where people go.",
                           validators=[
                               Optional(), Length(max=1000, message="The venues must be 1000 characters or fewer")])
    booking_contact = StringField(
        "Booking contact (optional)", widget=GovTextInput(),
        description="Whom officers or the person contact to book, e.g. a phone number or email address.",
        validators=[Optional(), Length(max=300, message="The booking contact must be 300 characters or fewer")])
    notes = TextAreaField("Notes (optional)", widget=GovTextArea(), validators=[
        Optional(), Length(max=1000, message="The notes must be 1000 characters or fewer")])

    def venue_lines(self) -> list[str]:
        return [line.strip() for line in (self.venues.data or "").splitlines() if line.strip()]


class EditOfferingForm(LocalDetailsForm):
    submit = SubmitField("Save changes", widget=GovSubmitInput())


class AddOfferingForm(LocalDetailsForm):
    pathway = HiddenField()
    course = RadioField("Course", widget=GovRadioInput(), validators=[InputRequired(message="Choose a course")])
    submit = SubmitField("Add offering", widget=GovSubmitInput())


class ChoosePathwayForm(Form):
    class Meta:
        csrf = False  # a step asked for with GET; nothing changes

    pathway = RadioField("Which pathway?", widget=GovRadioInput(),
                         validators=[InputRequired(message="Choose a pathway")])
    submit = SubmitField("Continue", widget=GovSubmitInput())
