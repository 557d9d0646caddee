"""The form that copies a convening for a new edition: its name, web address and first day."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired, Length

from convene.forms import ConveneForm, DateField


class EditionForm(ConveneForm):
    """What the new edition is called and when it starts; everything else comes from the convening copied."""

    name = StringField(_l("Name of the new edition"), [DataRequired(message=_l("Enter a name.")), Length(max=200)])
    slug = StringField(
        _l("Web address"), [DataRequired(message=_l("Enter a web address.")), Length(max=64)],
        description=_l("Lowercase letters, digits and hyphens: it becomes /c/<address>/."),
    )
    starts_on = DateField(_l("First day"), [InputRequired(message=_l("Enter the first day."))],
                          invalid_value_message=_l("Enter a date, like 2027-06-01."))

    def edition_data(self) -> dict:
        return {"name": self.name.data, "slug": self.slug.data, "starts_on": self.starts_on.data}
