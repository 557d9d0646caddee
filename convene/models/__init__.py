"""Every model, importable from one place (Alembic reads the metadata through here)."""
from convene.models.base import Base, utcnow
from convene.models.checkin import Checkin, CheckinList, CheckinScan, ListKind, ScanResult
from convene.models.convenings import Convening, Delegation, Question, QuestionKind, TicketType
from convene.models.jobs import Job
from convene.models.messages import Message, MessageRecipient
from convene.models.outbox import OutboxMessage
from convene.models.payments import (
    CodeKind,
    DiscountCode,
    Order,
    OrderStatus,
    PaymentMethod,
    Refund,
    StripeEvent,
)
from convene.models.printing import PrintJob
from convene.models.privacy import PersonalDataErasure
from convene.models.storage import StoredFile, StoredFileChunk
from convene.models.registrations import (
    ACCESSIBILITY_NEEDS,
    ACTIVE,
    DIETARY_NEEDS,
    BADGE_FIELDS,
    ENDED,
    HOLDING_SEAT,
    PERSON_FIELDS,
    Answer,
    Registration,
    Role,
    Status,
)
from convene.models.schedule import (
    EVERYONE_KINDS,
    SESSION_KIND_LABELS,
    Presenter,
    ProgramSession,
    ProgramSettings,
    Room,
    SessionBlock,
    SessionKind,
    SessionPresenter,
    SessionPreference,
    SessionSignup,
)
from convene.models.teams import TEAM_ROLE_LABELS, ActorKind, AuditEntry, Invitation, Membership, TeamRole
from convene.models.users import User
from convene.models.visits import (
    AssignmentRun,
    HostOrganization,
    SiteVisit,
    VisitAssignment,
    VisitPreference,
    VisitSlot,
)

from convene.models import program_revision  # noqa: E402,F401  (its flush listener bumps program revisions)

__all__ = [
    "ACCESSIBILITY_NEEDS", "ACTIVE", "DIETARY_NEEDS", "HOLDING_SEAT", "PERSON_FIELDS", "Answer", "Base", "Convening",
    "Delegation", "OutboxMessage", "Question", "QuestionKind", "Registration", "Role", "Status",
    "TicketType", "User", "utcnow", "AssignmentRun", "HostOrganization", "SiteVisit",
    "VisitAssignment", "VisitPreference", "VisitSlot", "PrintJob", "BADGE_FIELDS", "StoredFile", "StoredFileChunk",
    "EVERYONE_KINDS", "SESSION_KIND_LABELS", "Presenter", "ProgramSession", "ProgramSettings", "Room", "SessionBlock",
    "SessionKind", "SessionPresenter", "SessionPreference", "SessionSignup",
    "ENDED", "CodeKind", "DiscountCode", "Order", "OrderStatus", "PaymentMethod", "Refund",
    "StripeEvent", "TEAM_ROLE_LABELS", "ActorKind", "AuditEntry", "Invitation", "Membership", "TeamRole",
    "PersonalDataErasure", "Job", "Checkin", "CheckinList", "CheckinScan", "ListKind", "ScanResult",
    "Message", "MessageRecipient",
]
