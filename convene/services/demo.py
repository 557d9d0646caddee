"""The demo convening: a Toronto cohort convening with invented people, loaded in one unit of work.

Modelled on the Skilled Immigrant Integration Program's convening in Toronto: eight US community
delegations, national technical-assistance providers, five Toronto host organizations for site
visits, a networking dinner, roundtables and working groups. Every person is invented. The host
organizations carry the names of the public institutions in the source article; their addresses,
descriptions and access details here are illustrative, written for the demo.

The rosters are module-level data so later features (site visits, sessions) can extend them.
"""
from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    Answer,
    Checkin,
    CheckinList,
    CheckinScan,
    ListKind,
    ScanResult,
    HostOrganization,
    SiteVisit,
    VisitPreference,
    VisitSlot,
    Convening,
    Delegation,
    DiscountCode,
    Question,
    QuestionKind,
    Registration,
    Role,
    Status,
    TicketType,
    User,
    Membership,
    TeamRole,
    utcnow,
)
from convene.services.db import unit_of_work
from convene.services.demo_languages import add_demo_languages
from convene.services.demo_program import load_demo_program
from convene.services.registrations import new_reference

DEMO_ORGANIZER_EMAIL = "organizer@convene.example"
DEMO_ORGANIZER_PASSWORD = "convene-demo"
DEMO_STAFF_EMAIL = "desk@convene.example"
DEMO_SLUG = "toronto-cohort"
DEMO_SEED = 2027
TIMEZONE = "America/Toronto"

CONVENING = dict(
    slug=DEMO_SLUG,
    name="Skilled Immigrant Integration Program — Toronto Convening",
    city="Toronto",
    venue="St. Lawrence Conference Centre",
    venue_address="95 Front Street East, Toronto, ON M5E 1C2",
    timezone=TIMEZONE,
    currency="CAD",
    capacity=120,
    contact_email="toronto-convening@siip.example",
    published=True,
    reference_prefix="TOR",
    waitlist_enabled=True,
    description=(
        "Three days in Toronto for the eight US communities in the Skilled Immigrant Integration Program, "
        "the national partners who coach them, and the Canadian organizations that have spent years helping "
        "newcomers put their training and experience back to work.\n\n"
        "We open with a networking dinner so delegates, technical-assistance providers and program staff meet "
        "before the work starts. On the second morning, small groups visit two of five Toronto host "
        "organizations — a college bridging program, an employment agency, the city's newcomer office, a "
        "loan fund for credential costs and an online career-matching network — to see how their services "
        "run day to day. In the afternoon, regional employer-council staff lead roundtables on mentoring, "
        "employer engagement, professional immigrant networks and working with government.\n\n"
        "The last day belongs to the communities: each delegation reviews its action plan with its "
        "technical-assistance providers, joins a working group on the topic closest to its goals, and tells "
        "the cohort what has changed at home since the program began."
    ),
)

# Ticket types, in the order the form lists them. All are free: online payment is not set up yet.
DELEGATE_TICKET = "Cohort delegate"
OBSERVER_TICKET = "Observer (partner agencies)"
# Codes the demo shows on the payments side: a partner discount and the speakers' free code.
DEMO_CODES = (
    dict(code="PARTNER25", kind="percent", percent=25, max_uses=10, note="Network partners"),
    dict(code="SPEAKERFREE", kind="percent", percent=100, max_uses=5, note="Invited speakers who register themselves"),
)
INVOICE_ISSUER = "Skilled Immigrant Integration Program\n95 Front Street East\nToronto, ON M5E 1C2"
INVOICE_INSTRUCTIONS = ("Pay by bank transfer to the program account (transit 00012, account 3456789), "
                        "quoting the invoice number, or by cheque to the address above.")

TICKET_TYPES = (
    dict(name=DELEGATE_TICKET, hidden=False,
         description="For members of the eight community delegations. Meals and site-visit transport included."),
    dict(name="Technical assistance provider", hidden=True,
         description="Complimentary, added by the organizers for national partners."),
    dict(name="Host organization", hidden=True, description="Complimentary, for site-visit hosts."),
    dict(name="Speaker", hidden=True, description="Complimentary, for invited speakers."),
    dict(name="Staff", hidden=True, description="Program staff."),
    dict(name=OBSERVER_TICKET, hidden=False, capacity=20, price_cents=35000, early_price_cents=29500,
         description="For partner agencies and funders who want to follow the convening. Pay by card or invoice."),
)

WORKING_GROUPS = (
    "Higher Education/Community Colleges",
    "Healthcare Licensing/Regulated Professions",
    "Refugee Strategies",
    "City as Employer/Employer Engagement",
    "State-Level Engagement",
    "Pathways",
    "WIOA/Apprenticeship",
)
ROUNDTABLE_TOPICS = (
    "Inclusive workplaces and employer training",
    "Engaging employers and other stakeholders",
    "Mentoring programs",
    "Professional immigrant networks",
    "Communications and media",
    "Working with government",
)
QUESTIONS = {
    "working_group": dict(label="Which working group would you most like to join?",
                          kind=QuestionKind.SINGLE_CHOICE, choices=list(WORKING_GROUPS)),
    "dinner": dict(label="Will you attend the networking dinner on the first evening?", kind=QuestionKind.YES_NO,
                   required=True),
    "hopes": dict(label="What do you most hope to take home from Toronto?", kind=QuestionKind.LONG_TEXT,
                  help_text="A sentence or two helps us shape the roundtables and working groups."),
    "roundtables": dict(label="Which topics would you like roundtables on?", kind=QuestionKind.MULTIPLE_CHOICE,
                        choices=list(ROUNDTABLE_TOPICS)),
}
HOPES = (
    "A clear next step for our credential-recognition pilot, and peers to call when we get stuck.",
    "How a city office and a college share referrals without losing people between them.",
    "Ideas for bringing employers to the table before the training is designed, not after.",
    "Practical examples of bridging programs for internationally trained nurses.",
    "How the loan fund decides who qualifies, and what repayment looks like in practice.",
    "A stronger action plan, and honest feedback on it from our technical-assistance team.",
    "Ways to measure outcomes that our state legislature will actually read.",
    "Mentoring models we could start with volunteers from our own chamber of commerce.",
    "How to fold refugee professionals into WIOA-funded services rather than running a side program.",
    "Contacts in Toronto we can keep learning from after the convening.",
)


# Toronto hosts of the site visits; keys match the HostOrganization model's columns so the visits
# area can build rows straight from them. One is not step-free, to exercise accessible assignment.
HOST_ORGANIZATIONS = [
    dict(name="George Brown College", address="200 King Street East, Toronto, ON M5A 3W8", accessible=True,
         description="A college whose bridging programs prepare internationally trained professionals for work "
         "in their field in Ontario, with employer placements built in."),
    dict(name="Magnet", address="350 Victoria Street, Toronto, ON M5B 2K3", accessible=True,
         description="A university-based platform that matches job seekers, newcomers among them, with "
         "employers on skills rather than job titles."),
    dict(name="Toronto Newcomer Office", address="55 John Street, Toronto, ON M5V 3C6", accessible=True,
         description="The city's office for newcomer policy: it coordinates services across departments and "
         "works on the city's own hiring of immigrants."),
    dict(name="Immigrant Access Fund", address="720 Spadina Avenue, Toronto, ON M5S 2T9", accessible=False,
         description="A loan fund that lends newcomers the money for licensing exams, courses and credential "
         "assessments. The visit is in a converted house; the meeting room is up a flight of stairs."),
    dict(name="ACCES Employment", address="489 College Street, Toronto, ON M6G 1A5", accessible=True,
         description="An employment agency running sector-specific programs and employer hiring events for "
         "internationally trained job seekers."),
]


@dataclass(frozen=True)
class Person:
    """One row of a roster; badge is the name to print when it differs from the given name."""

    given: str
    family: str
    org: str
    title: str
    badge: str = ""
    pronouns: str = ""
    diet: tuple[str, ...] = ()
    access: tuple[str, ...] = ()
    access_notes: str = ""
    diet_notes: str = ""
    phone: str = ""


P = Person

# Every organization appearing below, with the (reserved .example) domain its people's emails use.
ORGANIZATION_DOMAINS = {
    # Maryland
    "Maryland Department of Labor": "labor.md.example",
    "Maryland Office for Refugees and Asylees": "mora.md.example",
    "Montgomery Valley Community College": "mvcc.example",
    "Baltimore Mayor's Office of Immigrant Affairs": "baltimore.example",
    "Central Maryland Workforce Board": "cmwb.example",
    # Ohio
    "Ohio Office of Opportunities for New Americans": "newamericans.oh.example",
    "Central Ohio Refugee Services": "cors.example",
    "Cuyahoga Valley Community College": "cvcc.example",
    "Greater Cleveland Workforce Board": "gcwb.example",
    "City of Columbus New Americans Initiative": "columbus.example",
    # Michigan
    "Michigan Office for New Americans": "newamericans.mi.example",
    "Detroit Welcoming Center": "detroitwelcome.example",
    "Macomb Valley Community College": "macombvalley.example",
    "Southeast Michigan Workforce Board": "semwb.example",
    # Colorado
    "Colorado Office of New Americans": "newamericans.co.example",
    "Colorado Department of Human Services, Refugee Services": "cdhs.co.example",
    "Foothills Community College": "foothills.example",
    "Denver Office of Immigrant and Refugee Affairs": "denver.example",
    "Arapahoe Workforce Board": "arapahoewb.example",
    # Minneapolis–Saint Paul
    "City of Saint Paul Welcoming Office": "stpaul.example",
    "Minnesota Department of Employment and Economic Development": "deed.mn.example",
    "Mississippi River Community College": "mrcc.example",
    "Twin Cities Refugee Resettlement Partnership": "tcrrp.example",
    "Twin Cities Regional Chamber": "tcchamber.example",
    # Houston
    "Houston Office of New Americans": "houston.example",
    "Bayou Community College": "bayoucc.example",
    "Bayou City Workforce Board": "bcwb.example",
    "Gulf Coast Refugee Services": "gcrs.example",
    # Philadelphia
    "Philadelphia Office of Immigrant Affairs": "phila.example",
    "Schuylkill Community College": "schuylkill.example",
    "Delaware Valley Workforce Board": "dvwb.example",
    "Philadelphia Welcome Center for New Americans": "phlwelcome.example",
    # Syracuse
    "City of Syracuse New Americans Initiative": "syracuse.example",
    "Syracuse Refugee Assistance Center": "srac.example",
    "Salt City Community College": "saltcity.example",
    "Central New York Workforce Board": "cnywb.example",
    # National technical-assistance partners
    "National Network for Immigrant Professionals": "nnip.example",
    "Bridging Credentials Institute": "bridgingcredentials.example",
    "Welcoming Workforce Alliance": "welcomingworkforce.example",
    "Center for Adult Learning Policy": "adultlearningpolicy.example",
    "Refugee Employment Resource Network": "rern.example",
    "Apprenticeship Pathways Collaborative": "apprenticeshippathways.example",
    # Toronto hosts and speakers
    "George Brown College": "georgebrown.example",
    "Magnet": "magnet.example",
    "Toronto Newcomer Office": "toronto.example",
    "Immigrant Access Fund": "iaf.example",
    "ACCES Employment": "accesemployment.example",
    "Toronto Region Immigrant Employment Council": "triec.example",
    "Centre for Newcomer Labour Research": "cnlr.example",
    # Program staff
    "Skilled Immigrant Integration Program": "siip.example",
}

# The eight community delegations; the first person listed is the delegation's contact.
DELEGATIONS = {
    "Maryland": (
        P("Rachel", "Goldberg", "Maryland Department of Labor", "Director, Adult Education and Workforce Programs",
          pronouns="she/her", phone="+1 410 555 0142"),
        P("Layla", "Haddad", "Maryland Office for Refugees and Asylees", "Employment Program Manager",
          badge="ليلى حداد", pronouns="she/her", diet=("halal",)),
        P("Samuel", "Okafor", "Montgomery Valley Community College", "Dean of Workforce Development",
          pronouns="he/him"),
        P("Priya", "Sharma", "Baltimore Mayor's Office of Immigrant Affairs", "Policy Analyst",
          badge="प्रिया शर्मा", diet=("vegetarian",)),
        P("Marcus", "Bell", "Central Maryland Workforce Board", "Business Services Manager"),
        P("Selamawit", "Tesfaye", "Montgomery Valley Community College", "ESOL Career Navigator",
          badge="ሰላማዊት ተስፋዬ", pronouns="she/her"),
        P("Daniel", "Rivera", "Maryland Department of Labor", "Apprenticeship Navigator",
          access=("step_free",), access_notes="I use a wheelchair; an accessible van for site visits, please."),
        P("Grace", "Kim", "Central Maryland Workforce Board", "Career Coach"),
    ),
    "Ohio": (
        P("Megan", "O'Brien", "Ohio Office of Opportunities for New Americans", "Executive Director",
          pronouns="she/her", phone="+1 614 555 0173"),
        P("Abdirahman", "Yusuf", "Central Ohio Refugee Services", "Director of Employment Services",
          diet=("halal",)),
        P("Dariush", "Karimi", "Cuyahoga Valley Community College", "Credential Evaluation Advisor",
          badge="داریوش کریمی", pronouns="he/him"),
        P("Olena", "Kovalenko", "Greater Cleveland Workforce Board", "Program Manager",
          badge="Олена Коваленко", pronouns="she/her"),
        P("Tyrone", "Washington", "City of Columbus New Americans Initiative", "Deputy Director"),
        P("Hannah", "Schultz", "Cuyahoga Valley Community College", "Nursing Bridge Coordinator",
          diet=("gluten_free",), diet_notes="Coeliac: please keep gluten-free food separate."),
        P("Bishnu", "Gurung", "Central Ohio Refugee Services", "Case Manager", badge="बिष्णु गुरुङ",
          pronouns="he/him", diet=("vegetarian",)),
    ),
    "Michigan": (
        P("Jennifer", "Novak", "Michigan Office for New Americans", "Director", pronouns="she/her",
          phone="+1 517 555 0118"),
        P("Omar", "Farouk", "Detroit Welcoming Center", "Program Director", badge="عمر فاروق", diet=("halal",)),
        P("Wei", "Zhang", "Macomb Valley Community College", "International Credentials Advisor", badge="张伟"),
        P("Łukasz", "Wójcik", "Southeast Michigan Workforce Board", "Labor Market Analyst", pronouns="he/him"),
        P("Fatima", "Al-Sayed", "Detroit Welcoming Center", "Career Navigator", badge="فاطمة السيد",
          pronouns="she/her", diet=("halal",)),
        P("Brian", "Mitchell", "Michigan Office for New Americans", "Policy Advisor", access=("large_print",)),
        P("Nadia", "Petrović", "Southeast Michigan Workforce Board", "Employer Engagement Lead"),
        P("Joseph", "Mensah", "Macomb Valley Community College", "Director of Adult Education"),
    ),
    "Colorado": (
        P("Elena", "Vásquez", "Colorado Office of New Americans", "Director", pronouns="she/her",
          phone="+1 303 555 0196"),
        P("Dawit", "Bekele", "Colorado Department of Human Services, Refugee Services",
          "Refugee Employment Coordinator", badge="ዳዊት በቀለ", pronouns="he/him"),
        P("Sarah", "Thompson", "Foothills Community College", "Associate Dean of Health Sciences",
          diet=("vegetarian",)),
        P("Minh", "Trần", "Denver Office of Immigrant and Refugee Affairs", "Community Liaison",
          badge="Trần Văn Minh"),
        P("Ji-woo", "Park", "Arapahoe Workforce Board", "Adult Services Manager", badge="박지우",
          pronouns="they/them"),
        P("Kevin", "Brooks", "Arapahoe Workforce Board", "Executive Director"),
        P("Amani", "Mwangi", "Colorado Department of Human Services, Refugee Services", "Program Analyst",
          pronouns="she/her", access=("quiet_room",)),
    ),
    "Minneapolis–Saint Paul": (
        P("Hodan", "Warsame", "City of Saint Paul Welcoming Office", "Director", pronouns="she/her",
          diet=("halal",), phone="+1 651 555 0127"),
        P("Erik", "Lindqvist", "Minnesota Department of Employment and Economic Development",
          "Senior Policy Analyst"),
        P("Pa Nhia", "Vang", "Mississippi River Community College", "Dean of Adult Basic Education",
          pronouns="she/her"),
        P("Ahmed", "Nur", "Twin Cities Refugee Resettlement Partnership", "Employment Manager", diet=("halal",)),
        P("Lucía", "Fernández", "Twin Cities Regional Chamber", "Talent Programs Manager", diet=("vegan",)),
        P("Meiling", "Chen", "Minnesota Department of Employment and Economic Development",
          "Workforce Strategy Consultant", badge="陈美玲", diet=("gluten_free",)),
        P("David", "Larson", "Mississippi River Community College", "Workforce Training Director",
          access=("step_free",), access_notes="Power wheelchair; needs a lift-equipped vehicle for site visits."),
    ),
    "Houston": (
        P("Adriana", "Salinas", "Houston Office of New Americans", "Director", pronouns="she/her",
          phone="+1 713 555 0164"),
        P("Lan", "Nguyễn", "Bayou Community College", "ESL Transitions Coordinator", badge="Nguyễn Thị Lan",
          pronouns="she/her"),
        P("Chinedu", "Eze", "Bayou City Workforce Board", "Healthcare Industry Liaison"),
        P("Yusuf", "Rahimi", "Gulf Coast Refugee Services", "Employment Specialist", badge="یوسف رحیمی",
          diet=("halal",)),
        P("Anjali", "Deshpande", "Bayou Community College", "Director of Healthcare Pathways",
          badge="अंजलि देशपांडे", diet=("vegetarian",)),
        P("Carlos", "Gutiérrez", "Bayou City Workforce Board", "Regional Manager", pronouns="he/him"),
        P("Gülşen", "Öztürk", "Houston Office of New Americans", "Data Analyst", pronouns="she/her"),
        P("Patrick", "Nguyen", "Gulf Coast Refugee Services", "Director of Economic Empowerment",
          diet=("nut_allergy",), diet_notes="Tree nuts and peanuts; I carry an epinephrine pen."),
    ),
    "Philadelphia": (
        P("Aïssatou", "Diallo", "Philadelphia Office of Immigrant Affairs", "Deputy Director",
          pronouns="she/her", phone="+1 215 555 0139"),
        P("Noa", "Friedman", "Schuylkill Community College", "Director of Career Pathways", badge="נועה פרידמן",
          diet=("kosher",)),
        P("James", "O'Connor", "Delaware Valley Workforce Board", "Senior Program Officer",
          access=("captioning",)),
        P("Mariam", "Tadros", "Philadelphia Welcome Center for New Americans", "Professional Pathways Manager",
          badge="مريم تادرس"),
        P("Kofi", "Boateng", "Delaware Valley Workforce Board", "Apprenticeship Coordinator", pronouns="he/him"),
        P("Yu-ting", "Lin", "Schuylkill Community College", "Instructor, Health Careers ESL", badge="林雨婷",
          pronouns="she/her"),
    ),
    "Syracuse": (
        P("Michelle", "Carter", "City of Syracuse New Americans Initiative", "Coordinator", pronouns="she/her",
          phone="+1 315 555 0181"),
        P("Meron", "Alemu", "Syracuse Refugee Assistance Center", "Director of Employment", badge="ሜሮን አለሙ",
          pronouns="she/her"),
        P("Khalid", "Mansour", "Salt City Community College", "Workforce Programs Manager", badge="خالد منصور",
          diet=("halal",)),
        P("Stephanie", "Russo", "Central New York Workforce Board", "Deputy Director", access=("step_free",),
          access_notes="Wheelchair user."),
        P("Yonas", "Haile", "Syracuse Refugee Assistance Center", "Job Developer", badge="ዮናስ ሃይለ",
          pronouns="he/him"),
        P("François", "Bérubé", "Salt City Community College", "Professor of Engineering Technology"),
    ),
}

# Joined the waitlist once the delegate ticket was full: (delegation, person).
WAITLIST = (
    ("Philadelphia", P("Kwame", "Asante", "Schuylkill Community College", "Adjunct Faculty, Allied Health")),
    ("Houston", P("Rosa", "Delgado", "Bayou City Workforce Board", "Career Counselor", pronouns="she/her")),
    ("Minneapolis–Saint Paul", P("Tenzin", "Dolkar", "Twin Cities Refugee Resettlement Partnership",
                                 "Case Manager", pronouns="she/her", diet=("vegetarian",))),
)

TA_PROVIDERS = (
    P("Ramón", "Ibáñez", "National Network for Immigrant Professionals", "Senior Technical Assistance Manager",
      pronouns="he/him"),
    P("Catherine", "Walsh", "Bridging Credentials Institute", "Director of Programs"),
    P("Ingrid", "Solberg", "Bridging Credentials Institute", "Healthcare Licensing Specialist",
      diet=("dairy_free",)),
    P("Ngozi", "Adeyemi", "Welcoming Workforce Alliance", "Policy Director", pronouns="she/her"),
    P("Rahul", "Mehta", "Center for Adult Learning Policy", "Senior Policy Analyst", badge="राहुल मेहता",
      diet=("vegetarian",)),
    P("Sofía", "Morales", "Refugee Employment Resource Network", "Technical Assistance Lead",
      access=("step_free", "mobility_assistance"), access_notes="I use a mobility scooter."),
    P("Thomas", "Becker", "Apprenticeship Pathways Collaborative", "Apprenticeship Specialist"),
)

# One person from each host organization, in HOST_ORGANIZATIONS order.
HOSTS = (
    P("Marlon", "Campbell", "George Brown College", "Manager, Newcomer Bridging Programs"),
    P("Simran", "Kaur", "Magnet", "Partnerships Lead", badge="ਸਿਮਰਨ ਕੌਰ", pronouns="she/her",
      diet=("vegetarian",)),
    P("Alexandre", "Tremblay", "Toronto Newcomer Office", "Policy Development Officer"),
    P("Mariana", "Costa", "Immigrant Access Fund", "Ontario Regional Manager"),
    P("Ravi", "Subramaniam", "ACCES Employment", "Director, Employer Partnerships"),
)

SPEAKERS = (
    P("Andrea", "Lopes", "Toronto Region Immigrant Employment Council", "Director, Employer Engagement",
      pronouns="she/her"),
    P("Irina", "Volkova", "Centre for Newcomer Labour Research", "Research Director", badge="Ирина Волкова"),
)

STAFF = (
    P("Elizabeth", "Osei", "Skilled Immigrant Integration Program", "Program Director", pronouns="she/her",
      phone="+1 212 555 0107"),
    P("Jun", "Watanabe", "Skilled Immigrant Integration Program", "Program Associate", badge="渡辺 純"),
    P("Camille", "Laurent", "Skilled Immigrant Integration Program", "Events Manager", pronouns="she/her"),
)

# Who comes on which ticket, with which role.
COMPLIMENTARY = (
    ("Technical assistance provider", Role.TA_PROVIDER, TA_PROVIDERS),
    ("Host organization", Role.HOST, HOSTS),
    ("Speaker", Role.SPEAKER, SPEAKERS),
    ("Staff", Role.STAFF, STAFF),
)

# The demo's team: the organizer is also a platform administrator (creates convenings); each account's
# role holds on the demo convening only. Every account has the demo password.
ACCOUNTS = (
    (DEMO_ORGANIZER_EMAIL, TeamRole.OWNER, "Demo Organizer"),
    ("finance@convene.example", TeamRole.FINANCE, "Demo Finance"),
    (DEMO_STAFF_EMAIL, TeamRole.DESK, "Demo Desk"),
    ("visits@convene.example", TeamRole.SITE_VISIT_LEAD, "Demo Site-Visit Lead"),
)

# Day two: every visitor sees two hosts, one in the morning and one in the afternoon.
VISIT_SLOTS = (
    ("Morning site visits", time(9, 30), time(12, 0), time(9, 0)),
    ("Afternoon site visits", time(13, 45), time(16, 15), time(13, 15)),
)
# Places per host and slot (morning, afternoon): the loan fund's room is smaller after lunch.
VISIT_CAPACITY = {
    "George Brown College": (16, 16), "Magnet": (14, 14), "Toronto Newcomer Office": (14, 14),
    "Immigrant Access Fund": (12, 9), "ACCES Employment": (16, 16),
}
MEETING_POINTS = {
    "George Brown College": ("Conference centre lobby, Front Street doors", "A 10-minute walk east; staff lead."),
    "Magnet": ("Conference centre lobby, Front Street doors", "TTC Line 1 from King to Dundas, then a 5-minute walk."),
    "Toronto Newcomer Office": ("Lobby, beside the registration desk", "Chartered bus, leaves on time."),
    "Immigrant Access Fund": ("Lobby, beside the registration desk", "Streetcar 510 Spadina; staff carry fares."),
    "ACCES Employment": ("Conference centre lobby, Front Street doors", "Chartered bus, leaves on time."),
}

REGISTRATION_WINDOW = timedelta(days=42)  # registrations spread over the six weeks before today
_TRANSLITERATE = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "ß": "ss", "ı": "i"})


def check_demo_allowed() -> None:
    """Refuse (ConveneError) under the production configuration: the demo accounts share a published password."""
    if current_app.config.get("ENV_NAME") == "production":
        raise ConveneError("demo_in_production")


def load_demo(now: datetime | None = None) -> tuple[Convening, bool]:
    """Load the demo convening and demo accounts; when the convening exists, return it untouched."""
    check_demo_allowed()
    now = now or utcnow()
    rng = random.Random(DEMO_SEED)
    with unit_of_work():
        existing = db.session.execute(sa.select(Convening).where(Convening.slug == DEMO_SLUG)).scalar_one_or_none()
        if existing is not None:
            return existing, False
        convening = _build_convening(now)
        db.session.add(convening)
        db.session.flush()
        _add_accounts(convening)
        _add_registrations(convening, rng, now)
        _add_site_visits(convening, rng)
        load_demo_program(convening, now)
        add_demo_languages(convening)
        _add_checkin(convening, rng, now)
    return convening, True


def demo_dates(today: date) -> tuple[date, date]:
    """From the first Tuesday of June next year to the Thursday after it."""
    june_first = date(today.year + 1, 6, 1)
    tuesday = june_first + timedelta(days=(1 - june_first.weekday()) % 7)
    return tuesday, tuesday + timedelta(days=2)


def _add_accounts(convening: Convening) -> None:
    for email, role, name in ACCOUNTS:
        user = db.session.execute(sa.select(User).where(User.email == email)).scalar_one_or_none()
        if user is None:
            user = User(email=email, name=name, is_admin=email == DEMO_ORGANIZER_EMAIL)
            user.set_password(DEMO_ORGANIZER_PASSWORD)
            db.session.add(user)
            db.session.flush()
        db.session.add(Membership(user_id=user.id, convening_id=convening.id, role=role))


def _build_convening(now: datetime) -> Convening:
    tz = ZoneInfo(TIMEZONE)
    starts_on, ends_on = demo_dates(now.astimezone(tz).date())
    opened_on = (now - REGISTRATION_WINDOW).astimezone(tz).date()
    convening = Convening(
        **CONVENING,
        starts_on=starts_on,
        ends_on=ends_on,
        registration_opens_at=datetime.combine(opened_on, time(9, 0), tz).astimezone(timezone.utc),
        registration_closes_at=datetime.combine(starts_on - timedelta(days=7), time(23, 59), tz)
        .astimezone(timezone.utc),
        created_at=now - REGISTRATION_WINDOW - timedelta(days=3),
    )
    convening.updated_at = convening.created_at
    convening.ticket_types = [TicketType(position=i, **{"price_cents": 0, **values})
                              for i, values in enumerate(TICKET_TYPES)]
    observer = _ticket(convening, OBSERVER_TICKET)
    observer.early_until_at = convening.registration_closes_at - timedelta(days=21)
    convening.invoice_enabled = True
    convening.invoice_issuer = INVOICE_ISSUER
    convening.invoice_instructions = INVOICE_INSTRUCTIONS
    convening.questions = [Question(position=i, **values) for i, values in enumerate(QUESTIONS.values())]
    convening.delegations = [
        Delegation(name=name, contact_name=f"{people[0].given} {people[0].family}", contact_email=_email(people[0]))
        for name, people in DELEGATIONS.items()
    ]
    # Exactly full, so the public form offers the waitlist.
    _ticket(convening, DELEGATE_TICKET).capacity = sum(len(people) for people in DELEGATIONS.values())
    db.session.add(convening)
    db.session.flush()
    db.session.add_all(DiscountCode(convening_id=convening.id, **values) for values in DEMO_CODES)
    return convening


def _add_registrations(convening: Convening, rng: random.Random, now: datetime) -> None:
    opened = convening.registration_opens_at
    questions = dict(zip(QUESTIONS, convening.questions))
    delegations = {d.name: d for d in convening.delegations}
    references: set[str] = set()

    def add(person: Person, ticket: str, role: str, created_at: datetime, *, delegation: str | None = None,
            status: str = Status.CONFIRMED, source: str = "online", answers: dict | None = None) -> None:
        registration = Registration(
            convening=convening, ticket_type=_ticket(convening, ticket),
            reference=_unique_reference(convening, references),
            delegation=delegations[delegation] if delegation else None, role=role, status=status, source=source,
            created_at=created_at, updated_at=created_at, **_person_fields(person),
        )
        if status == Status.CONFIRMED:
            registration.confirmed_at = created_at
        else:
            registration.waitlisted_at = created_at
        registration.answers = [Answer(question=questions[key], value=value) for key, value in (answers or {}).items()]
        db.session.add(registration)

    # Organizers add partners, hosts, speakers and staff in the first days after opening.
    for ticket, role, people in COMPLIMENTARY:
        for person in people:
            created_at = _moment(rng, opened, rng.uniform(0, 8), now)
            answers = {"dinner": rng.random() < 0.9} if role != Role.STAFF else {}
            add(person, ticket, role, created_at, source="admin", answers=answers)

    # Each delegation's contact registers first and passes the link on: registrations arrive in clusters.
    for name, people in DELEGATIONS.items():
        start = rng.uniform(1, 24)
        for i, person in enumerate(people):
            day = start if i == 0 else start + rng.triangular(0, 12, 2)
            add(person, DELEGATE_TICKET, Role.DELEGATE, _moment(rng, opened, day, now), delegation=name,
                answers=_delegate_answers(rng, person))

    for i, (name, person) in enumerate(WAITLIST):
        day = REGISTRATION_WINDOW.days - 5 + i + rng.uniform(0, 0.8)
        add(person, DELEGATE_TICKET, Role.DELEGATE, _moment(rng, opened, day, now), delegation=name,
            status=Status.WAITLISTED, answers=_delegate_answers(rng, person))


def _delegate_answers(rng: random.Random, person: Person) -> dict:
    """Most people answer most questions; the dinner question is required on the form."""
    answers: dict = {"dinner": rng.random() < 0.88}
    if rng.random() < 0.9:
        likely = _likely_working_group(person.org)
        answers["working_group"] = likely if likely and rng.random() < 0.6 else rng.choice(WORKING_GROUPS)
    if rng.random() < 0.45:
        answers["hopes"] = rng.choice(HOPES)
    if rng.random() < 0.75:
        picked = set(rng.sample(ROUNDTABLE_TOPICS, k=rng.randint(1, 3)))
        answers["roundtables"] = [topic for topic in ROUNDTABLE_TOPICS if topic in picked]
    return answers


def _likely_working_group(org: str) -> str | None:
    for word, group in (("College", WORKING_GROUPS[0]), ("Refugee", WORKING_GROUPS[2]),
                        ("Workforce", WORKING_GROUPS[6]), ("City", WORKING_GROUPS[3]),
                        ("Department", WORKING_GROUPS[4]), ("Office", WORKING_GROUPS[4])):
        if word in org:
            return group
    return None


def _moment(rng: random.Random, opened: datetime, day: float, now: datetime) -> datetime:
    """A time of day during US working hours, `day` days after registration opened, never in the future."""
    moment = datetime.combine((opened + timedelta(days=day)).date(), time(0, 0), opened.tzinfo) + timedelta(
        hours=rng.uniform(13, 23))
    return max(opened, min(moment, now - timedelta(minutes=rng.randint(5, 90))))


def _ticket(convening: Convening, name: str) -> TicketType:
    return next(t for t in convening.ticket_types if t.name == name)


def _unique_reference(convening: Convening, taken: set[str]) -> str:
    # new_reference checks the database; the set covers this batch, which is not flushed yet.
    with db.session.no_autoflush:
        reference = new_reference(convening)
        while reference in taken:
            reference = new_reference(convening)
    taken.add(reference)
    return reference


def _email(person: Person) -> str:
    def ascii_part(text: str) -> str:
        folded = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE)).encode("ascii", "ignore").decode()
        return re.sub(r"[^a-z0-9]+", "", folded.lower())

    return f"{ascii_part(person.given)}.{ascii_part(person.family)}@{ORGANIZATION_DOMAINS[person.org]}"


def _person_fields(person: Person) -> dict:
    return dict(
        given_name=person.given, family_name=person.family, badge_name=person.badge, pronouns=person.pronouns,
        email=_email(person), phone=person.phone, organization=person.org, job_title=person.title,
        dietary_needs=list(person.diet), dietary_notes=person.diet_notes,
        accessibility_needs=list(person.access), accessibility_notes=person.access_notes,
    )


DINNER_LIST = "Networking dinner"


def _add_checkin(convening: Convening, rng: random.Random, now: datetime) -> None:
    """The entrance, a dinner and a bus list, with arrivals over the last hour and a half so the live numbers move.

    The bus list is for the first morning visit: it fills once the organizer places people on visits.
    """
    from convene.services.checkin import add_main_list

    db.session.flush()
    desk = db.session.execute(sa.select(User).where(User.email == DEMO_STAFF_EMAIL)).scalar_one()
    entrance = add_main_list(convening.id)
    dinner = CheckinList(convening_id=convening.id, kind=ListKind.GATHERING, name=DINNER_LIST, position=1)
    visit = db.session.execute(sa.select(SiteVisit).where(SiteVisit.convening_id == convening.id)
                               .order_by(SiteVisit.slot_id, SiteVisit.id).limit(1)).scalar_one()
    bus = CheckinList(convening_id=convening.id, kind=ListKind.VISIT, site_visit_id=visit.id, position=2,
                      name=f"Bus: {visit.host.name} · {visit.slot.label}"[:120])
    db.session.add_all([dinner, bus])
    db.session.flush()
    confirmed = db.session.execute(sa.select(Registration).where(
        Registration.convening_id == convening.id, Registration.status == Status.CONFIRMED)
        .order_by(Registration.id)).scalars().all()
    arrived = sorted(rng.sample(confirmed, len(confirmed) * 2 // 5), key=lambda r: r.id)
    for checkin_list, people in ((entrance, arrived), (dinner, arrived[: len(arrived) // 4])):
        for person in people:
            at = now - timedelta(minutes=rng.uniform(3, 90))
            checkin = Checkin(list_id=checkin_list.id, registration_id=person.id, checked_in_at=at,
                              checked_in_by_id=desk.id, device="demo-desk")
            db.session.add(checkin)
            db.session.flush()
            db.session.add(CheckinScan(convening_id=convening.id, list_id=checkin_list.id, user_id=desk.id, at=at,
                                       device="demo-desk", code=person.reference, result=ScanResult.CHECKED_IN,
                                       registration_id=person.id, checkin_id=checkin.id))


def _add_site_visits(convening: Convening, rng: random.Random) -> None:
    """Hosts, two visit slots on day two, and rankings in which a delegation's members share tastes."""
    from convene.models.visits import VISITING_ROLES

    db.session.flush()  # ids for the rows below
    tz = ZoneInfo(TIMEZONE)
    day = convening.starts_on + timedelta(days=1)
    convening.visits_per_person = 2
    convening.visit_preferences_open = True
    hosts = [HostOrganization(convening=convening, **values) for values in HOST_ORGANIZATIONS]
    slots = [
        VisitSlot(convening_id=convening.id, label=label,
                  starts_at=datetime.combine(day, start, tz).astimezone(timezone.utc),
                  ends_at=datetime.combine(day, end, tz).astimezone(timezone.utc))
        for label, start, end, _ in VISIT_SLOTS
    ]
    db.session.add_all(hosts + slots)
    db.session.flush()
    for host in hosts:
        meeting_point, transport = MEETING_POINTS[host.name]
        for slot, capacity, (_, _, _, departs) in zip(slots, VISIT_CAPACITY[host.name], VISIT_SLOTS):
            db.session.add(SiteVisit(
                convening_id=convening.id, host_id=host.id, slot_id=slot.id, capacity=capacity,
                meeting_point=meeting_point, transport_notes=transport,
                departs_at=datetime.combine(day, departs, tz).astimezone(timezone.utc),
            ))
    visitors = db.session.execute(
        sa.select(Registration).where(Registration.convening_id == convening.id,
                                      Registration.status == Status.CONFIRMED, Registration.role.in_(VISITING_ROLES))
        .order_by(Registration.id)
    ).scalars().all()
    tastes = {}
    for registration in visitors:
        # A shared taste per delegation, nudged for each person; one in eight has not ranked yet.
        taste = tastes.setdefault(registration.delegation_id, rng.sample(hosts, len(hosts)))
        if rng.random() < 0.125:
            continue
        mine = list(taste)
        if rng.random() < 0.5:
            i = rng.randrange(len(mine) - 1)
            mine[i], mine[i + 1] = mine[i + 1], mine[i]
        for rank, host in enumerate(mine[: rng.choice((2, 3, 3, 4))], start=1):
            db.session.add(VisitPreference(registration_id=registration.id, host_id=host.id, rank=rank))
