"""English texts of Ronney's review pages and queue labels, keyed by the Swedish original.

``Ronney.messages`` hands them to the web app, which looks them up before its own; a test
checks that every ``_()`` text of Ronney's templates has one here or in the web app's table.
"""

from __future__ import annotations

EN: dict[str, str] = {
    # queue labels (Ronney.queue_labels)
    "ansökningar": "applications",
    "kompletteringar": "requests for more information",
    # the application: headings and explanations
    "Ansökan": "Application",
    "Ansökt": "Applied for",
    "Att granska först": "To check first",
    "Att känna till": "Good to know",
    "Avvikelser": "Deviations",
    "Förberett av Ronney": "Prepared by Ronney",
    "Ronney föreslår, en handläggare beslutar.": "Ronney proposes; a case worker decides.",
    "Underlaget kan inte visas": "The material cannot be shown",
    "Föreslaget försörjningsstöd": "Proposed income support (försörjningsstöd)",
    "Förslag": "Proposal",
    "Förslag till beslut": "Proposed decision",
    "Försörjningsstöd": "Income support (försörjningsstöd)",
    "Varifrån beloppet kommer": "Where the amount comes from",
    "Beloppet väntar:": "The amount is waiting:",
    "Ingen beräkning:": "No calculation:",
    "riksnorm och skäliga kostnader minus inkomster": "riksnorm and reasonable costs minus income",
    "lägst 0 kr, i hela kronor": "at least SEK 0, in whole kronor",
    "per månad": "per month",
    "Riksnorm": "Riksnorm (national norm)",
    "Riksnormen:": "The riksnorm:",
    "personliga kostnader": "personal costs",
    "gemensamma hushållskostnader": "common household costs",
    "väntar på riksnormen": "waiting for the riksnorm",
    "väntar på årets riksnormstabell": "waiting for this year's riksnorm table",
    "ej verifierad mot förordningen": "not verified against the ordinance",
    "Skäliga kostnader": "Reasonable costs (skäliga kostnader)",
    "Kostnader i ansökan": "Costs in the application",
    "Kostnad": "Cost",
    "Räknas": "Counted",
    "Kommunens regel": "The municipality's rule",
    "Jobbstimulans": "Job incentive (jobbstimulans)",
    "Månader med försörjningsstöd i följd": "Consecutive months with income support",
    # the decision per item
    "Post": "Item",
    "Belopp": "Amount",
    "Skäl": "Reason",
    "Bifall": "Granted",
    "Delvis bifall": "Partly granted",
    "Avslag": "Refused",
    "delavslag": "partial refusal",
    "inkomst": "income",
    "Ändra beslutet per post (bifall, delvis bifall, avslag)": "Change the decision per item (granted, partly granted, refused)",
    "Ändra en post: välj beslut eller skriv ett annat belopp, och skriv skälet. Oförändrade poster beslutas som föreslaget.": (
        "To change an item, choose a decision or enter another amount, and give the reason. "
        "Items left unchanged are decided as proposed."
    ),
    "Godkänn: beslutet skrivs till e-tjänsten med beloppet och beräkningen nedan, med dina ändringar. Avslå: ansökan avslås med din motivering, som skrivs till e-tjänsten. Returnera: Ronney förbereder ansökan igen med din kommentar.": (
        "Approve: the decision is written to the e-service with the amount and the calculation below, "
        "with your changes. Reject: the application is refused with your reasons, which are written to "
        "the e-service. Return: Ronney prepares the application again with your comment."
    ),
    # the household
    "Hushåll": "Household",
    "Personer i ansökan": "People in the application",
    "Övriga i hushållet (ingår inte i ansökan)": "Others in the household (not part of the application)",
    "Person": "Person",
    "Ålder": "Age",
    "Lunch hemma": "Lunch at home",
    "Sambor": "Cohabiting",
    "Sökande": "Applicant",
    "Adress": "Address",
    "ja": "yes",
    "nej": "no",
    # income: application and registers
    "Inkomst": "Income",
    "Inkomster": "Income",
    "Inkomster: ansökan och register": "Income: application and registers",
    "Inga inkomster i ansökan eller registren.": "No income in the application or the registers.",
    "Register": "Register",
    "Registeruppgifter": "Register data",
    "Registrens inkomster månad för månad": "The registers' income month by month",
    "Uppgift i ansökan bredvid registrens uppgift för samma månad": "What the application says beside what the registers say for the same month",
    "Inga registeruppgifter hämtade.": "No register data fetched.",
    "Källor utan uppgifter": "Sources without data",
    "Folkbokföring": "Population register",
    "Arbetsförmedlingen": "Arbetsförmedlingen (Public Employment Service)",
    "Fordon": "Vehicles",
    "Förfrågan": "Request",
    "Skillnad": "Difference",
    "utan registrens belopp": "without the registers' amounts",
    "fryst, eftersom registren inte kunde läsas": "frozen, because the registers could not be read",
    "Enligt ansökans egna uppgifter": "According to the application's own data",
    # compared with last month
    "Jämfört med förra månaden": "Compared with last month",
    "Beslutet för": "The decision for",
    "Förra månaden": "Last month",
    "Nu": "Now",
    "Förändring": "Change",
    "Uppgift": "Item",
    "Inget beslut för förra månaden att jämföra med.": "No decision for last month to compare with.",
    "Inga avvikelser mot registren eller förra månaden, inget saknas.": "No deviations from the registers or last month; nothing is missing.",
    # missing items, requests for more information, attachments
    "Saknas": "Missing",
    "Vad": "What",
    "Begärd": "Requested",
    "Begärt": "Requested",
    "Senast": "Due",
    "senast": "due",
    "Kom in": "Received",
    "har inte kommit": "has not arrived",
    "av": "by",
    "Begärda kompletteringar": "Requested additions",
    "Begär komplettering?": "Request more information?",
    "Dagar sedan begäran": "Days since the request",
    "Sista dag": "Last day",
    "Ronney skickar begäran igen:": "Ronney sends the request again:",
    "Godkänn: begäran skickas igen till den sökande. Avslå: ingen ny begäran skickas. Returnera: Ronney kontrollerar ärendet igen.": (
        "Approve: the request is sent to the applicant again. Reject: no new request is sent. "
        "Return: Ronney checks the case again."
    ),
    "Bilagor hittills": "Attachments so far",
    "Bilagor och kompletteringar": "Attachments and additions",
    "artefakt": "artifact",
    # warnings and the case's history
    "Varningar från tidigare versioner": "Warnings from earlier versions",
    "Stängd": "Closed",
    "Stängda av handläggare": "Closed by a case worker",
    "Stäng (gäller även kommande versioner)": "Close (also applies to later versions)",
    "stängd av Ronney, orsaken finns inte längre": "closed by Ronney: the cause is gone",
    "ej kontrollerad": "not checked",
    "Kontrollerad": "Checked",
    "Återsänd med kommentar:": "Returned with the comment:",
    "Om underlaget": "About the material",
    # protected personal data, exceptions
    "Handläggs manuellt": "Handled by hand",
    "Gör så här": "What to do",
    "Underlaget har en form som den här versionen av Kollega inte känner till. Handlägg ansökan i verksamhetssystemet.": (
        "The material has a form this version of Kollega does not know. Handle the application in the case system."
    ),
}
