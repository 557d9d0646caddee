"""The registrations CSV streamed a batch of rows at a time: the same file whatever the batch size."""
from __future__ import annotations

import csv
import io

from convene.services import exports
from convene.services import registrations as service
from tests.factories import make_convening, make_delegation, make_question, make_ticket, person


def test_the_streamed_download_is_the_same_file_in_batches_of_two_as_in_one(organizer_client, monkeypatch):
    convening = make_convening(name="Streamed")
    ticket = make_ticket(convening)
    delegation = make_delegation(convening, "Québec")
    question = make_question(convening, "Dinner?", "yes_no")
    for n in range(5):
        service.add_registration(convening.id, ticket.id, person(n, family_name=["Ångström", "O'Neil", "=Sum"][n % 3]),
                                 {question.id: n % 2 == 0}, delegation_id=delegation.id if n % 2 else None,
                                 send_email=False)
    whole = exports.registrations_csv(convening)
    monkeypatch.setattr(exports, "EXPORT_BATCH", 2)  # three batches, each with its own answers and visits queries
    chunks = []
    original = exports._stream_csv

    def counting(*args):
        for chunk in original(*args):
            chunks.append(chunk)
            yield chunk

    monkeypatch.setattr(exports, "_stream_csv", counting)
    response = organizer_client.get(f"/admin/c/{convening.id}/registrations.csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.get_data().decode("utf-8") == whole
    assert len(chunks) == 4  # the header, then batches of 2, 2 and 1 people
    rows = list(csv.DictReader(io.StringIO(whole.lstrip("\ufeff"))))
    assert [r["Family name"] for r in rows] == ["'=Sum", "Ångström", "Ångström", "O'Neil", "O'Neil"]
    assert [r["Delegation"] for r in rows].count("Québec") == 2 and {r["Dinner?"] for r in rows} == {"Yes", "No"}
