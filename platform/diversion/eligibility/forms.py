"""Forms of the policy console."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovDateInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import DateField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.utils import unset_value
from wtforms.validators import InputRequired, Length, Optional


class GovDateField(DateField):
    """A GOV.UK day/month/year date whose widget copes with a request that left it out."""

    widget = GovDateInput()

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        raw: list[str] | None = getattr(self, "raw_data", None)
        if not raw:
            self.raw_data = None


class DraftForm(FlaskForm):
    document = TextAreaField(
        "Draft policy",
        widget=GovTextArea(),
        description="TOML, as in the force files: summary, parameters, exclusions, pathways "
        "with their criteria, and test cases.",
        validators=[InputRequired(message="Enter the draft policy"), Length(max=200_000)],
    )
    note = StringField("What changed", widget=GovTextInput(), validators=[Optional(), Length(max=500)])
    submit = SubmitField("Save draft", widget=GovSubmitInput())


class PublishForm(FlaskForm):
    effective_from = GovDateField(
        "In force from",
        widget=GovDateInput(),
        format="%d %m %Y",
        description="For example, 1 4 2027. Decisions on and after this date use this version.",
        validators=[InputRequired(message="Enter the date the version comes into force")],
    )
    submit = SubmitField("Publish", widget=GovSubmitInput())


class SimulationForm(FlaskForm):
    class Meta:
        csrf = False  # a read-only report, asked for with GET

    source = RadioField("Which policy", widget=GovRadioInput(),
                        validators=[InputRequired(message="Choose the policy to try")])
    since = GovDateField("Only decisions from", widget=GovDateInput(), format="%d %m %Y",
                      validators=[Optional()])
    submit = SubmitField("Run simulation", widget=GovSubmitInput())
