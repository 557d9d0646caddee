"""Forms of the CSV import: the upload with its defaults, and the columns step (what each column feeds)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, HiddenField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from convene.admin.registration_forms import (
    ROLE_CHOICES,
    _delegation_select,
    _payment_note,
    _settlement_radio,
    _ticket_select,
)
from convene.forms import ConveneForm
from convene.models import Role
from convene.services.imports import ColumnUse, ImportDefaults, ImportTargets


class ImportDefaultsForm(ConveneForm):
    """What rows leaving a column empty get: shared by the upload and the columns step."""

    ticket_type_id = _ticket_select(_l("Default ticket type"))
    delegation_id = _delegation_select(_l("Default delegation"))
    new_delegation_name = StringField(
        _l("…or a new delegation named"), [Optional(), Length(max=160)],
        description=_l("Created if it does not exist, and used instead of the default delegation."),
    )
    role = SelectField(_l("Default role"), choices=ROLE_CHOICES, default=Role.DELEGATE.value)
    settlement = _settlement_radio(
        _l("Rows on tickets with a price are settled by"),
        _l("For rows whose Payment column is empty (invoice, paid or comp there overrides this). Each invoice is "
           "numbered and, if emails are sent, emailed."),
    )
    payment_note = _payment_note(
        _l("For paid rows without a Payment note column, for example “Paid by bank transfer”."))
    send_emails = BooleanField(_l("Email each person their confirmation and manage link"), default=False)

    def defaults(self) -> ImportDefaults:
        return ImportDefaults(
            ticket_type_id=self.ticket_type_id.data, delegation_id=self.delegation_id.data or None,
            new_delegation_name=self.new_delegation_name.data or "", role=self.role.data,
            settlement=self.settlement.data, payment_note=self.payment_note.data or "",
        )


class ImportForm(ImportDefaultsForm):
    """Upload a delegates spreadsheet, with defaults for the columns it leaves empty."""

    file = FileField(_l("CSV file"), validators=[
        FileRequired(message=_l("Choose a CSV file.")),
        FileAllowed(["csv"], message=_l("Upload a .csv file (in Excel: File › Save As › CSV UTF-8).")),
    ])


class ImportColumnsForm(ImportDefaultsForm):
    """The columns step: the kept file's reference, a select per column, check or import."""

    upload = HiddenField()
    check = SubmitField(_l("Check again"))
    confirm = SubmitField(_l("Import"))

    column_names: list[str] = []

    def mapping(self) -> dict[int, str]:
        """Column index -> what it feeds ("" for a column left unchosen, or whose choice was refused)."""
        return {int(name[4:]): "" if self[name].errors else self[name].data or "" for name in self.column_names}


def columns_form(targets: ImportTargets, headers: list[str], columns: list[ColumnUse] | None = None,
                 **kwargs) -> ImportColumnsForm:
    """The columns step's form for a file with these headers, each select set to what its column feeds now."""
    choices = [SelectChoice(value, label, optgroup=group) for value, label, group in targets.choices()]
    names = [f"col_{index}" for index in range(len(headers))]
    fields = {name: SelectField(headers[index] or _l("Column %(num)s", num=index + 1), choices=choices, default="",
                                validate_choice=True, invalid_choice_message=_l("Choose one of the options."))
              for index, name in enumerate(names)}
    form_class = type("ImportColumnsForm", (ImportColumnsForm,), {**fields, "column_names": names})
    data = {f"col_{c.index}": c.target or "" for c in columns or []}
    return form_class(data={**data, **kwargs.pop("data", {})}, **kwargs)
