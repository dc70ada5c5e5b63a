"""Forms of the policy console."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import (
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Optional

from diversion.forms import DateInput, Form, GovDateField, Longest
from diversion.forms import lazy_gettext as _l


class DraftForm(Form):
    document = TextAreaField(
        _l("Draft policy"),
        widget=GovTextArea(),
        description=_l("TOML, as in the force files: summary, parameters, exclusions, pathways "
                       "with their criteria, and test cases."),
        validators=[InputRequired(message=_l("Enter the draft policy")), Longest(200_000)],
    )
    note = StringField(_l("What changed"), widget=GovTextInput(), validators=[Optional(), Longest(500)])
    submit = SubmitField(_l("Save draft"), widget=GovSubmitInput())


class PublishForm(Form):
    effective_from = GovDateField(
        _l("In force from"),
        called="the date it comes into force",
        widget=DateInput(),
        format="%d %m %Y",
        description=_l("For example, 1 4 2027. Decisions on and after this date use this version."),
        validators=[InputRequired(message=_l("Enter the date the version comes into force"))],
    )
    submit = SubmitField(_l("Publish"), widget=GovSubmitInput())


class SimulationForm(Form):
    class Meta:
        csrf = False  # a read-only report, asked for with GET

    source = RadioField(_l("Which policy"), widget=GovRadioInput(),
                        validators=[InputRequired(message=_l("Choose the policy to try"))])
    since = GovDateField(_l("Only decisions from"), widget=DateInput(), format="%d %m %Y", called="the from date",
                      validators=[Optional()])
    submit = SubmitField(_l("Run simulation"), widget=GovSubmitInput())
