"""English texts of Bosse's review page and queue label, keyed by the Swedish original.

``Bosse.messages`` hands them to the web app, which looks them up before its own; a test
checks that every ``_()`` text of Bosse's template has one here or in the web app's table.
"""

from __future__ import annotations

EN: dict[str, str] = {
    # queue label (Bosse.queue_labels)
    "obemannade pass": "unfilled shifts",
    # the shift
    "Passet": "Shift",
    "Pass-id": "Shift id",
    "Enhet": "Unit",
    "Krav": "Requirements",
    "inga särskilda": "none in particular",
    "körkort": "driving licence",
    "läkemedelsdelegering": "delegation to give medication",
    "Sista tid": "Deadline",
    "Varför du ser passet": "Why you see this shift",
    "Bosse kunde inte slutföra steget": "Bosse could not finish the step",
    "Kontrollera passet i bemanningssystemet och SMS-tjänsten innan något görs för hand: bokningar och SMS görs högst en gång per referens.": (
        "Check the shift in the staffing system and the SMS service before doing anything by hand: "
        "bookings and SMS are made at most once per reference."
    ),
    # the proposal
    "Bosses förslag": "Bosse's proposal",
    "ingen behörig vikarie att föreslå": "no eligible substitute to propose",
    "Behöriga vikarier i rangordning": "Eligible substitutes in order of rank",
    "Ordning: företrädesrätt först, sedan minst bokade timmar denna månad (rättvisa), sedan egna önskemål (enhet, avstånd), sist vikarie-id.": (
        "Order: priority right first, then fewest booked hours this month (fairness), then their own "
        "wishes (unit, distance), last the substitute's id."
    ),
    "Plats": "Place",
    "Vikarie": "Substitute",
    "Varför på denna plats": "Why in this place",
    "Erbjudande och svar": "Offer and reply",
    "Ingen vikarie uppfyller kraven för passet.": "No substitute meets the shift's requirements.",
    "Ej behöriga och varför": "Not eligible, and why",
    "Skäl": "Reason",
    "Inga.": "None.",
    # an exception to the daily rest (AB), never used by Bosse on its own
    "Endast med undantag från dygnsvilan": "Only with an exception to the daily rest (dygnsvila)",
    "Vad undantaget skulle kräva": "What the exception would require",
    "Bosse erbjuder aldrig pass på undantag. Undantag enligt AB gäller bara verksamhet som skyddar liv, hälsa eller säkerhet när bemanningen inte kan lösas på annat sätt, och kräver kompenserande vila. Beslutet är ert; boka då i bemanningssystemet.": (
        "Bosse never offers a shift under an exception. Exceptions under AB apply only to work that "
        "protects life, health or safety when the staffing cannot be solved another way, and they "
        "require compensating rest. The decision is yours; if you make it, book in the staffing system."
    ),
    # the SMS history
    "SMS-historik": "SMS history",
    "Inga SMS har skickats om passet.": "No SMS has been sent about this shift.",
    "Vad": "What",
    "erbjudande": "offer",
    "omgång": "round",
    "svar": "reply",
    "bekräftelse": "confirmation",
    "passet tillsatt": "shift filled",
    "sent ja, tack men nej": "late yes, thanked and declined",
    "kunde inte bokas": "could not be booked",
    "svarade JA efter sista tiden": "said YES after the deadline",
    "otydligt svar": "unclear reply",
    "levererat": "delivered",
    "kunde inte levereras": "could not be delivered",
    "Underlaget visar läget när det skapades. Bosse kontrollerar passet och reglerna igen innan något bokas; är passet redan tillsatt görs ingenting.": (
        "The material shows the situation when it was made. Bosse checks the shift and the rules again "
        "before anything is booked; if the shift is already filled, nothing is done."
    ),
    # each candidate's reply history (robots/bosse/history.py)
    "Svarshistorik": "Reply history",
    "Svarat ja på {yes} av {asked} förfrågningar de senaste {days} dagarna": "Said yes to {yes} of {asked} requests in the last {days} days",
    "{n} obesvarade": "{n} unanswered",
    "svarar oftast inom {minutes} min": "usually answers within {minutes} min",
    "Inga förfrågningar från Bosse de senaste {days} dagarna": "No requests from Bosse in the last {days} days",
}
