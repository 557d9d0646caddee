"""Forms of the back office's privacy page: the notice and retention, and the typed confirmation of an erasure."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from convene.errors import MESSAGES
from convene.forms import ConveneForm, IntegerField
from convene.services.privacy import MAX_RETENTION_MONTHS, MIN_RETENTION_MONTHS, NOTICE_MAX_LENGTH


class PrivacyForm(ConveneForm):
    """The privacy notice (empty: the default text) and how many months after the convening personal data is kept."""

    privacy_notice = TextAreaField(
        _l("Privacy notice"), [Optional(), Length(
            max=NOTICE_MAX_LENGTH, message=MESSAGES["privacy_notice_too_long"].format(
            limit=f"{NOTICE_MAX_LENGTH:,}"))],
        description=_l("Leave empty to show the default text below, which follows your settings. Separate paragraphs "
                    "with a blank line."),
        render_kw={"rows": 14},
    )
    retention_months = IntegerField(
        _l("Erase personal data this many months after the convening ends"), [Optional()],
        minimum=MIN_RETENTION_MONTHS, maximum=MAX_RETENTION_MONTHS,
        range_message=MESSAGES["retention_invalid"], invalid_value_message=MESSAGES["retention_invalid"],
        description=_l("From %(min)s to %(max)s. Leave empty to keep it until you "
                       "erase it yourself.", min=MIN_RETENTION_MONTHS, max=MAX_RETENTION_MONTHS),
        render_kw={"inputmode": "numeric"},
    )


class EraseForm(ConveneForm):
    """Erasing a convening's personal data: the convening's web address typed out, and the preview's token."""

    confirm_slug = StringField(_l("Type the convening's web address to confirm"), [Optional(), Length(max=200)],
                               render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"})
    preview = HiddenField()

    def confirms(self, slug: str) -> bool:
        """Whether the typed address is the convening's; else the message goes beside the field."""
        if (self.confirm_slug.data or "").strip() == slug:
            return True
        self.confirm_slug.errors = [*self.confirm_slug.errors, MESSAGES["erase_confirm_mismatch"].format(slug=slug)]
        return False
