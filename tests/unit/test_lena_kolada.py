"""Kolada's personalkontinuitet, by hand-made cases: who is counted, which visits count, median not mean."""

from __future__ import annotations

from datetime import date, timedelta

from robots.lena.continuity import distinct_staff
from robots.lena.effects import recipients_of, visits_of
from robots.lena.kolada import KoladaVisit, Recipient, kolada_continuity
from robots.lena.model import HistoryEntry, Problem

LAST = date(2026, 11, 30)
DAYS = [LAST - timedelta(days=i) for i in range(13, -1, -1)]  # the 14 days ending LAST


def daily(client: str, staff_by_day: list[tuple[str, str]], *, hours: tuple[int, int] = (8, 17)) -> list[KoladaVisit]:
    """Two care visits a day for 14 days: (morning staff, afternoon staff) per day."""
    out = []
    for day, (a, b) in zip(DAYS, staff_by_day, strict=True):
        out.append(KoladaVisit(client, day, hours[0] * 60, "omsorg", (a,)))
        out.append(KoladaVisit(client, day, hours[1] * 60, "omsorg", (b,)))
    return out


def same(a: str, b: str) -> list[tuple[str, str]]:
    return [(a, b)] * 14


def who(n: int) -> list[tuple[str, str]]:
    """n different staff spread over the 14 days (n between 1 and 28)."""
    names = [f"S{i % n}" for i in range(28)]
    return [(names[2 * d], names[2 * d + 1]) for d in range(14)]


class TestSelection:
    """Only recipients 65+, at home the whole period, with two counted visits every day."""

    def test_a_recipient_meeting_two_people_counts_two(self) -> None:
        r = kolada_continuity(daily("K1", same("A", "B")), {"K1": Recipient("K1", 80)}, LAST)
        assert r.counts == (2,) and r.median == 2.0 and r.excluded == {}

    def test_under_65_is_left_out(self) -> None:
        r = kolada_continuity(daily("K1", same("A", "B")), {"K1": Recipient("K1", 64)}, LAST)
        assert r.counts == () and r.median is None and r.excluded == {"under_65": 1}

    def test_unknown_age_is_left_out(self) -> None:
        r = kolada_continuity(daily("K1", same("A", "B")), {"K1": Recipient("K1", None)}, LAST)
        assert r.excluded == {"under_65": 1}

    def test_one_day_with_a_single_visit_leaves_the_recipient_out(self) -> None:
        visits = daily("K1", same("A", "B"))
        visits.remove(visits[2 * 6 + 1])  # day 7's afternoon visit
        r = kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST)
        assert r.excluded == {"fewer_than_two_visits_a_day": 1}

    def test_a_day_away_from_home_leaves_the_recipient_out(self) -> None:
        r = kolada_continuity(daily("K1", same("A", "B")), {"K1": Recipient("K1", 80, frozenset({DAYS[3]}))}, LAST)
        assert r.excluded == {"not_at_home": 1}

    def test_an_absence_before_the_period_does_not_matter(self) -> None:
        before = LAST - timedelta(days=14)
        r = kolada_continuity(daily("K1", same("A", "B")), {"K1": Recipient("K1", 80, frozenset({before}))}, LAST)
        assert r.counts == (2,)


class TestWhichVisitsCount:
    """07:00–22:00 only; safety alarms, meal deliveries and home-health staff are not counted."""

    def test_safety_alarm_meal_and_home_health_staff_are_not_counted(self) -> None:
        visits = [
            *daily("K1", same("A", "B")),
            KoladaVisit("K1", DAYS[0], 10 * 60, "trygghetslarm", ("NIGHT",)),
            KoladaVisit("K1", DAYS[1], 11 * 60, "matleverans", ("DRIVER",)),
            KoladaVisit("K1", DAYS[2], 12 * 60, "hemsjukvård", ("NURSE",)),
        ]
        assert kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST).counts == (2,)

    def test_visits_outside_seven_to_ten_are_not_counted(self) -> None:
        visits = [
            *daily("K1", same("A", "B")),
            KoladaVisit("K1", DAYS[0], 6 * 60 + 59, "omsorg", ("EARLY",)),
            KoladaVisit("K1", DAYS[0], 22 * 60, "omsorg", ("LATE",)),
            KoladaVisit("K1", DAYS[0], 21 * 60 + 59, "omsorg", ("EVENING",)),
        ]
        assert kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST).counts == (3,)

    def test_excluded_visits_do_not_make_up_the_two_a_day(self) -> None:
        visits = [v for v in daily("K1", same("A", "B")) if not (v.day == DAYS[5] and v.start == 17 * 60)]
        visits.append(KoladaVisit("K1", DAYS[5], 12 * 60, "matleverans", ("DRIVER",)))
        visits.append(KoladaVisit("K1", DAYS[5], 23 * 60, "omsorg", ("NIGHT",)))
        r = kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST)
        assert r.excluded == {"fewer_than_two_visits_a_day": 1}

    def test_only_the_fourteen_days_ending_the_last_day_count(self) -> None:
        visits = [
            *daily("K1", same("A", "B")),
            KoladaVisit("K1", LAST - timedelta(days=14), 9 * 60, "omsorg", ("BEFORE",)),
            KoladaVisit("K1", LAST + timedelta(days=1), 9 * 60, "omsorg", ("AFTER",)),
        ]
        assert kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST).counts == (2,)

    def test_staff_of_other_groups_count_and_double_staffing_counts_both(self) -> None:
        visits = [*daily("K1", same("A", "B")), KoladaVisit("K1", DAYS[9], 15 * 60, "omsorg", ("OTHERGROUP", "C"))]
        assert kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST).counts == (4,)

    def test_visits_of_people_not_considered_are_ignored(self) -> None:
        visits = daily("K1", same("A", "B")) + daily("K2", same("X", "Y"))
        assert kolada_continuity(visits, {"K1": Recipient("K1", 80)}, LAST).counts == (2,)


class TestStatistic:
    """Kolada publishes the median; the mean is kept beside it, and differs when the counts are skewed."""

    def test_median_and_mean_of_skewed_counts(self) -> None:
        recipients = {c: Recipient(c, 85) for c in ("K1", "K2", "K3")}
        visits = daily("K1", who(2)) + daily("K2", who(3)) + daily("K3", who(16))
        r = kolada_continuity(visits, recipients, LAST)
        assert r.counts == (2, 3, 16)
        assert r.median == 3.0 and r.mean == 7.0

    def test_median_of_an_even_number_is_the_middle_two_averaged(self) -> None:
        recipients = {c: Recipient(c, 85) for c in ("K1", "K2")}
        r = kolada_continuity(daily("K1", who(4)) + daily("K2", who(7)), recipients, LAST)
        assert r.median == 5.5


class TestLenasOwnMeasureIsAnother:
    """Lena's own figure (history plus the planned day, every visit, any hour) is not Kolada's."""

    def test_the_two_differ_on_the_same_visits(self) -> None:
        history = [
            HistoryEntry(d.isoformat(), "K1", (a,)) for d, (a, b) in zip(DAYS[:-1], same("A", "B")[:-1], strict=True)
        ] + [HistoryEntry(DAYS[0].isoformat(), "K1", ("NIGHT",))]
        problem = Problem((), (), None, tuple(history))  # type: ignore[arg-type]
        assert distinct_staff(problem, {})["K1"] == 2  # counts the night alarm's staff
        kolada = kolada_continuity(
            [*daily("K1", same("A", "B")), KoladaVisit("K1", DAYS[0], 2 * 60, "trygghetslarm", ("NIGHT",))],
            {"K1": Recipient("K1", 80)},
            LAST,
        )
        assert kolada.counts == (2,)  # A and B; the alarm at 02:00 does not count


class TestFromTheHomeCareSystem:
    """The system's records become Kolada's inputs: local start times, kinds, ages, absences."""

    def test_history_and_clients(self) -> None:
        history = [
            {
                "date": "2026-11-20",
                "client_id": "K1",
                "kind": "trygghetslarm",
                "staff_ids": ["N"],
                "start": "2026-11-20T02:10+01:00",
            },
            {"date": "2026-11-20", "client_id": "K1", "staff_ids": ["A"], "start": "2026-11-20T08:00+01:00"},
        ]
        visits = visits_of(history)
        assert [(v.start, v.kind) for v in visits] == [(130, "trygghetslarm"), (480, "omsorg")]
        clients = [
            {"id": "K1", "age": 81, "absences": [{"from": "2026-11-24", "to": "2026-11-26", "reason": "sjukhus"}]},
            {"id": "K2", "age": "unknown"},
        ]
        recipients = recipients_of(clients, LAST)
        assert recipients["K1"].away_days == frozenset({date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)})
        assert recipients["K2"].age is None
