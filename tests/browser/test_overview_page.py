"""The overview page as a person uses it: the customer pyramid beside the profit pyramid and the counts per tier and
status (checked against plain SQL on the demo base for the newest evaluation, against the API for an older one
picked from the date picker or given in the URL), and the three value classes linking to the customer pages."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qs, quote, urlparse

import sqlalchemy as sa

TIERS = "query($d: Date) { valueSummary(includeTotal: true, asOf: $d) { tier customers shareOfCustomers revenue " \
        "profit shareOfProfit } statusCounts(asOf: $d) { label customers } }"


def pct(x) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def money(x) -> str:
    """As the page writes it: Intl.NumberFormat rounds half away from zero (Python's format rounds half to even)."""
    return "—" if x is None else f"{Decimal(repr(x)).quantize(Decimal(1), ROUND_HALF_UP):,}"


def _database(demo_url):
    engine = sa.create_engine(demo_url)
    with engine.connect() as conn:
        dates = [str(d) for (d,) in conn.execute(sa.text("SELECT DISTINCT as_of FROM evaluation_runs "
                                                         "ORDER BY as_of DESC"))]
        tiers = dict(conn.execute(sa.text("SELECT tier, count(*) FROM customer_evaluations GROUP BY tier")).all())
        statuses = dict(conn.execute(sa.text("SELECT status, count(*) FROM customer_evaluations "
                                             "GROUP BY status")).all())
        customers = conn.execute(sa.text("SELECT count(*) FROM customers")).scalar()
    engine.dispose()
    return dates, tiers, statuses, customers


def loaded(page, day: str | None = None) -> None:
    if day is None:
        page.wait_for_function("document.body.dataset.loaded && document.body.dataset.loaded !== 'error'")
    else:
        page.wait_for_function("d => document.body.dataset.loaded === d", arg=day)


def pyramid_rows(page) -> dict[str, list[str]]:
    """tier -> [customers, share of customers, revenue, profit, share of profit] as shown in the table."""
    rows = {}
    for tr in page.locator("#pyramid-numbers tbody tr").all():
        cells = tr.locator("td").all_inner_texts()
        rows[cells[0]] = cells[1:]
    return rows


def kpis(page, group: str) -> dict[str, int]:
    tiles = page.locator(f"#{group}-kpis .kpi")
    return {t.locator(".name").inner_text(): int(t.locator(".value").inner_text().replace(",", ""))
            for t in tiles.all()}


def expected_rows(summary) -> dict[str, list[str]]:
    return {("Total" if i == len(summary) - 1 else (r["tier"] or "no tier")):
            [f"{r['customers']:,}", pct(r["shareOfCustomers"]), money(r["revenue"]), money(r["profit"]),
             pct(r["shareOfProfit"])] for i, r in enumerate(summary)}


def test_the_pyramids_count_what_the_database_holds_and_follow_the_date(browser, server, demo_url):
    dates, tiers, statuses, customers = _database(demo_url)
    page = browser.open("/")
    loaded(page)
    assert page.locator("#as-of").input_value() == dates[0]  # the newest evaluation by default
    assert page.locator("#as-of option").all_inner_texts() == dates

    # customers per tier and their shares: plain SQL over customer_evaluations (the newest evaluation's tiers)
    shown = pyramid_rows(page)
    assert {t: int(v[0].replace(",", "")) for t, v in shown.items() if t != "Total"} == tiers
    assert shown["Total"][0] == f"{customers:,}" and sum(tiers.values()) == customers
    for tier, n in tiers.items():
        assert shown[tier][1] == pct(n / customers)
    assert kpis(page, "tier") == tiers
    assert kpis(page, "status") == statuses
    # revenue, profit and the share of profit as the API computes them
    newest = server.graphql(TIERS, d=None)
    assert shown == expected_rows(newest["valueSummary"])

    # the charts: a bar per tier, the top tier (rule order, as the table) at the top, labelled with its share
    page.wait_for_selector("body[data-charts=true]")  # drawn once plotly has loaded, after the numbers
    order = [t for t in shown if t != "Total"]
    for chart, column in (("customer", 1), ("profit", 4)):
        assert page.locator(f"#{chart}-pyramid text.bartext").all_text_contents() == [shown[t][column] for t in order]
        tops = [box["y"] for box in (p.bounding_box() for p in page.locator(f"#{chart}-pyramid .bars path").all())]
        assert tops == sorted(tops)
    widths = [p.bounding_box()["width"] for p in page.locator("#customer-pyramid .bars path").all()]
    for width, tier in zip(widths, order):  # bar widths in proportion to the customers
        assert abs(width / widths[0] - tiers[tier] / tiers[order[0]]) < 0.02
    browser.screenshot("overview")

    # another date from the picker: the URL says which, every number is the API's for that day
    other = dates[3]
    page.locator("#as-of").select_option(other)
    loaded(page, other)
    assert parse_qs(urlparse(page.url).query)["asOf"] == [other]
    past = server.graphql(TIERS, d=other)
    assert pyramid_rows(page) == expected_rows(past["valueSummary"])
    assert pyramid_rows(page) != shown
    assert kpis(page, "status") == {s["label"]: s["customers"] for s in past["statusCounts"]}
    assert kpis(page, "status") != statuses
    assert f"as of {other}" in page.locator("#pyramid-numbers caption").inner_text()

    # a link opens on that day
    page = browser.open(f"/?asOf={other}")
    loaded(page, other)
    assert page.locator("#as-of").input_value() == other
    assert pyramid_rows(page) == expected_rows(past["valueSummary"])


def test_the_date_picker_works_from_the_keyboard(browser, demo_url):
    dates, *_ = _database(demo_url)
    page = browser.open("/")
    loaded(page)
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "as-of":
            break
    assert page.evaluate("document.activeElement.id") == "as-of"
    page.keyboard.press("ArrowDown")  # the next (older) evaluation
    loaded(page, dates[1])
    assert parse_qs(urlparse(page.url).query)["asOf"] == [dates[1]]
    page.go_back()
    loaded(page)
    assert page.locator("#as-of").input_value() == dates[0]


def test_the_value_classes_list_the_apis_customers_and_open_their_pages(browser, server, demo_url):
    dates, *_ = _database(demo_url)
    classes = server.graphql("""query($d: Date) {
      p: topCustomers(by: PROFIT, to: $d, first: 10) { id name profit }
      g: topCustomers(by: GROWTH, to: $d, first: 10) { id name growth }
      n: topCustomers(by: NEGATIVE_VALUE, to: $d, first: 10) { id name profit } }""", d=dates[0])
    page = browser.open("/")
    loaded(page)
    for box, key in (("#class-profit", "p"), ("#class-growth", "g"), ("#class-negative", "n")):
        links = page.locator(f"{box} tbody a")
        assert links.all_inner_texts() == [c["name"] for c in classes[key]]
        assert links.evaluate_all("as => as.map(a => a.getAttribute('href'))") == \
            [f"/customers/{quote(c['id'], safe='')}" for c in classes[key]]
        assert 0 < links.count() <= 10
    # what each class means, as shown: profits descending, growth descending, every "negative value" below zero
    profits = [float(t.replace(",", "")) for t in page.locator("#class-profit tbody td:nth-child(3)").all_inner_texts()]
    assert profits == sorted(profits, reverse=True)
    negative = [float(t.replace(",", "")) for t in page.locator("#class-negative tbody td:nth-child(3)").all_inner_texts()]
    assert negative and all(p < 0 for p in negative) and negative == sorted(negative)

    first = classes["n"][0]
    page.locator("#class-negative tbody a").first.click()
    page.wait_for_url(f"**/customers/{quote(first['id'], safe='')}")
    assert urlparse(page.url).path == f"/customers/{quote(first['id'], safe='')}"


def test_a_date_without_an_evaluation_shows_the_servers_message(browser, demo_url):
    dates, *_ = _database(demo_url)
    page = browser.open("/?asOf=2000-01-31")
    page.wait_for_function("document.body.dataset.loaded === 'error'")
    error = page.locator("#overview-error .error").inner_text()
    assert "before the first evaluation" in error and "BAD_ARGUMENT" in error
    page.wait_for_function("document.querySelectorAll('#as-of option').length > 1")
    assert page.locator("#as-of option").all_inner_texts()[:len(dates)] == dates
