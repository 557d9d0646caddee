"""The form that copies a convening for a new edition: its name, web address and first day."""
from __future__ import annotations

from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired, Length

from convene.forms import ConveneForm, DateField


class EditionForm(ConveneForm):
    """What the new edition is called and when it starts; everything else comes from the convening copied."""

    name = StringField("Name of the new edition", [DataRequired(message="Enter a name."), Length(max=200)])
    slug = StringField(
        "Web address", [DataRequired(message="Enter a web address."), Length(max=64)],
        description="Lowercase letters, digits and hyphens: it becomes /c/<address>/.",
    )
    starts_on = DateField("First day", [InputRequired(message="Enter the first day.")],
                          invalid_value_message="Enter a date, like 2027-06-01.")

    def edition_data(self) -> dict:
        return {"name": self.name.data, "slug": self.slug.data, "starts_on": self.starts_on.data}
