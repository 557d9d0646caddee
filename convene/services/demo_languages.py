"""The demo convening in four languages: its own texts in French, a few people writing in French,
Spanish and Arabic, and interpretation asked for and offered.

Runs inside the demo's unit of work, after its registrations, site visits and program exist.
Spanish and Arabic pages show the organizer's texts in English (the default), as a convening
whose translations are not done yet would.
"""
from __future__ import annotations

import sqlalchemy as sa

from convene.extensions import db
from convene.models import (
    Convening,
    HostOrganization,
    ProgramSession,
    Question,
    Registration,
    SessionKind,
    SessionSignup,
    SiteVisit,
    Status,
    TicketType,
)

LANGUAGES = ["en", "fr", "es", "ar"]
INTERPRETATION = ["fr", "es", "ar"]

# French for the demo's texts, keyed by the English the demo writes.
FRENCH: dict[str, str] = {
    "Skilled Immigrant Integration Program — Toronto Convening":
        "Programme d'intégration des immigrants qualifiés — Rencontre de Toronto",
    # ticket types
    "Cohort delegate": "Délégué·e de la cohorte",
    "For members of the eight community delegations. Meals and site-visit transport included.":
        "Pour les membres des huit délégations communautaires. Repas et transport des visites compris.",
    "Technical assistance provider": "Prestataire d'assistance technique",
    "Complimentary, added by the organizers for national partners.":
        "Gratuit, ajouté par l'équipe organisatrice pour les partenaires nationaux.",
    "Host organization": "Organisation d'accueil",
    "Complimentary, for site-visit hosts.": "Gratuit, pour les organisations qui accueillent les visites.",
    "Speaker": "Conférencier·ère",
    "Complimentary, for invited speakers.": "Gratuit, pour les conférenciers et conférencières invités.",
    "Staff": "Équipe",
    "Program staff.": "Équipe du programme.",
    "Observer (partner agencies)": "Observateur (organismes partenaires)",
    "For partner agencies and funders who want to follow the convening. Pay by card or invoice.":
        "Pour les organismes partenaires et les bailleurs de fonds qui souhaitent suivre la rencontre. "
        "Paiement par carte ou sur facture.",
    # questions and their choices
    "Which working group would you most like to join?": "Quel groupe de travail aimeriez-vous le plus rejoindre ?",
    "Higher Education/Community Colleges": "Enseignement supérieur / collèges communautaires",
    "Healthcare Licensing/Regulated Professions": "Permis d'exercice en santé / professions réglementées",
    "Refugee Strategies": "Stratégies pour les personnes réfugiées",
    "City as Employer/Employer Engagement": "La ville employeuse / mobilisation des employeurs",
    "State-Level Engagement": "Mobilisation à l'échelle des États",
    "Pathways": "Parcours",
    "WIOA/Apprenticeship": "WIOA / apprentissage",
    "Will you attend the networking dinner on the first evening?":
        "Participerez-vous au souper de réseautage le premier soir ?",
    "What do you most hope to take home from Toronto?": "Que souhaitez-vous surtout rapporter de Toronto ?",
    "A sentence or two helps us shape the roundtables and working groups.":
        "Une phrase ou deux nous aident à préparer les tables rondes et les groupes de travail.",
    "Which topics would you like roundtables on?": "Sur quels sujets aimeriez-vous des tables rondes ?",
    "Inclusive workplaces and employer training": "Milieux de travail inclusifs et formation des employeurs",
    "Engaging employers and other stakeholders": "Mobiliser les employeurs et les autres parties prenantes",
    "Mentoring programs": "Programmes de mentorat",
    "Professional immigrant networks": "Réseaux de professionnels immigrants",
    "Communications and media": "Communications et médias",
    "Working with government": "Travailler avec les gouvernements",
    # hosts (names are their own) and the meeting points
    "Toronto Newcomer Office": "Bureau des nouveaux arrivants de Toronto",
    "Conference centre lobby, Front Street doors": "Hall du centre de conférences, portes de la rue Front",
    "A 10-minute walk east; staff lead.": "Dix minutes de marche vers l'est, avec l'équipe.",
    "TTC Line 1 from King to Dundas, then a 5-minute walk.":
        "Ligne 1 de la TTC de King à Dundas, puis cinq minutes de marche.",
    "Lobby, beside the registration desk": "Hall, à côté du comptoir d'inscription",
    "Chartered bus, leaves on time.": "Autobus nolisé, qui part à l'heure.",
    "Streetcar 510 Spadina; staff carry fares.": "Tramway 510 Spadina ; l'équipe fournit les billets.",
    # sessions
    "Registration and welcome coffee": "Inscription et café d'accueil",
    "Pick up your badge and meet the other delegations.": "Récupérez votre badge et rencontrez les autres délégations.",
    "Opening plenary: Why Toronto": "Plénière d'ouverture : pourquoi Toronto",
    "Networking dinner": "Souper de réseautage",
    "Dinner with delegates, technical-assistance providers, hosts and program staff.":
        "Souper avec les délégations, les prestataires d'assistance technique, les hôtes et l'équipe du programme.",
    "Breakfast": "Déjeuner",
    "Lunch": "Dîner",
    "Site-visit briefing": "Séance d'information sur les visites",
    "How the day runs: groups, buses, and what to ask your hosts.":
        "Le déroulement de la journée : les groupes, les autobus et les questions à poser à vos hôtes.",
    "Morning site visits": "Visites du matin",
    "Afternoon site visits": "Visites de l'après-midi",
    "Buses leave from the Front Street entrance": "Les autobus partent de l'entrée de la rue Front",
    "Learning and Inclusive Workplace": "Apprentissage et milieu de travail inclusif",
    "Employer and Stakeholder Engagement": "Mobilisation des employeurs et des parties prenantes",
    "Mentorship": "Mentorat",
    "Professional Immigrant Networks": "Réseaux de professionnels immigrants",
    "Communication and Media Strategy": "Stratégie de communication et médias",
    "Government Engagement": "Relations avec les gouvernements",
    "Keynote: A decade of newcomer labour research":
        "Conférence principale : dix ans de recherche sur l'emploi des nouveaux arrivants",
    "Action-plan reviews with TA providers": "Revue des plans d'action avec les prestataires d'assistance technique",
    "City as Employer/Employer Engagement Strategies":
        "La ville employeuse / stratégies de mobilisation des employeurs",
    "Pathways Working Group": "Groupe de travail Parcours",
    "Closing plenary: What has changed at home": "Plénière de clôture : ce qui a changé chez nous",
    "Each community tells the cohort what has changed since the program began.":
        "Chaque communauté raconte à la cohorte ce qui a changé depuis le début du programme.",
    "Farewell coffee": "Café d'au revoir",
}
FRENCH_DESCRIPTION = (
    "Trois jours à Toronto pour les huit communautés américaines du Programme d'intégration des immigrants "
    "qualifiés, les partenaires nationaux qui les accompagnent et les organisations canadiennes qui aident depuis "
    "des années les nouveaux arrivants à remettre leur formation et leur expérience au travail.\n\n"
    "Nous ouvrons par un souper de réseautage pour que délégations, prestataires d'assistance technique et équipe "
    "du programme se rencontrent avant le travail. Le deuxième matin, de petits groupes visitent deux des cinq "
    "organisations d'accueil de Toronto pour voir leurs services au quotidien. L'après-midi, des tables rondes "
    "portent sur le mentorat, la mobilisation des employeurs, les réseaux de professionnels immigrants et le "
    "travail avec les gouvernements.\n\n"
    "Le dernier jour appartient aux communautés : chaque délégation revoit son plan d'action avec ses "
    "prestataires d'assistance technique, rejoint un groupe de travail et raconte à la cohorte ce qui a changé "
    "chez elle depuis le début du programme."
)
# Who registered in which language, and who asked for interpretation, by (given, family) name.
PEOPLE_LANGUAGES = {
    ("Alexandre", "Tremblay"): "fr", ("Aïssatou", "Diallo"): "fr", ("François", "Bérubé"): "fr",
    ("Camille", "Laurent"): "fr",
    ("Elena", "Vásquez"): "es", ("Adriana", "Salinas"): "es", ("Carlos", "Gutiérrez"): "es",
    ("Rosa", "Delgado"): "es", ("Lucía", "Fernández"): "es",
    ("Layla", "Haddad"): "ar", ("Omar", "Farouk"): "ar", ("Fatima", "Al-Sayed"): "ar", ("Khalid", "Mansour"): "ar",
    ("Mariam", "Tadros"): "ar",
}
PEOPLE_INTERPRETATION = {
    ("Aïssatou", "Diallo"): ["fr"], ("Rosa", "Delgado"): ["es"], ("Carlos", "Gutiérrez"): ["es"],
    ("Omar", "Farouk"): ["ar"], ("Fatima", "Al-Sayed"): ["ar"],
}
# The keynote has French and Spanish interpreters only: the conflict finder warns about Arabic there.
KEYNOTE_INTERPRETATION = ["fr", "es"]
UNINTERPRETED = (SessionKind.MEAL, SessionKind.NETWORKING, SessionKind.SITE_VISIT)


def _french(row, *fields: str) -> None:
    texts = {f: FRENCH[getattr(row, f)] for f in fields if getattr(row, f) in FRENCH}
    if texts:
        row.translations = {**(row.translations or {}), "fr": {**(row.translations or {}).get("fr", {}), **texts}}


def add_demo_languages(convening: Convening) -> None:
    """Languages, French texts, people's languages and interpretation for the demo (no commit)."""
    db.session.flush()
    convening.languages = list(LANGUAGES)
    convening.default_language = "en"
    convening.interpretation_languages = list(INTERPRETATION)
    convening.translations = {"fr": {"name": FRENCH[convening.name], "description": FRENCH_DESCRIPTION}}

    def rows(model):
        return db.session.execute(sa.select(model).where(model.convening_id == convening.id)).scalars().all()

    for ticket in rows(TicketType):
        _french(ticket, "name", "description")
    for question in rows(Question):
        _french(question, "label", "help_text")
        if question.choices and all(choice in FRENCH for choice in question.choices):
            fr = question.translations.get("fr", {}) if question.translations else {}
            question.translations = {**(question.translations or {}),
                                     "fr": {**fr, "choices": [FRENCH[c] for c in question.choices]}}
    for host in rows(HostOrganization):
        _french(host, "name")
    for visit in rows(SiteVisit):
        _french(visit, "meeting_point", "transport_notes")
    for person in rows(Registration):
        key = (person.given_name, person.family_name)
        if key in PEOPLE_LANGUAGES:
            person.language = PEOPLE_LANGUAGES[key]
        if key in PEOPLE_INTERPRETATION:
            person.interpretation_needs = list(PEOPLE_INTERPRETATION[key])
    db.session.flush()
    needs = {r.id: set(r.interpretation_needs or []) for r in rows(Registration)
             if r.status == Status.CONFIRMED and r.interpretation_needs}
    signed: dict[int, set[int]] = {}
    for session_id, registration_id in db.session.execute(
        sa.select(SessionSignup.session_id, SessionSignup.registration_id)
        .join(ProgramSession, ProgramSession.id == SessionSignup.session_id)
        .where(ProgramSession.convening_id == convening.id)
    ):
        signed.setdefault(session_id, set()).add(registration_id)
    everyone = sorted(set().union(*needs.values()))
    for session in rows(ProgramSession):
        _french(session, "title", "description", "location")
        if session.kind in UNINTERPRETED:
            continue
        if session.title.startswith("Keynote"):
            session.interpretation = list(KEYNOTE_INTERPRETATION)
        elif session.signup_required:
            # Interpreters are booked for what the people signed up asked for.
            wanted = set().union(*(needs.get(pid, set()) for pid in signed.get(session.id, set())))
            session.interpretation = [code for code in INTERPRETATION if code in wanted]
        else:
            session.interpretation = [code for code in INTERPRETATION if code in everyone]
