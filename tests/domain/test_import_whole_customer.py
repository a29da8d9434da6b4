"""Importing the whole customer: surveys, opportunities, invoices, payment terms, credit, consent and product
categories, with the same guarantees as every other file (typed values, all or nothing, idempotent, partial files
change only their columns, the changed customers re-evaluated in the import's transaction)."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from domain.import_rows import ImportFailed
from domain.importer import import_directory
from domain.rulesets import publish
from domain.settings import DEFAULT_RULES

NEW_TABLES = ("surveys", "opportunities", "invoices")

FILES = {
    "reps.csv": """
external_id,name
r1,Ann
""",
    "customers.csv": """
external_id,name,created_at,payment_terms_days,credit_grade,credit_limit,consent,consent_at
c1,Acme,2024-01-01,14,A,5000,yes,2024-01-10
c2,Bolt,2024-01-01,,,,,
""",
    "products.csv": """
sku,name,unit_cost,category
A,Widget,4,tools
B,Service plan,,service
""",
    "orders.csv": """
order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price
o1,c1,2024-02-01,A,2,10
o2,c2,2024-02-03,B,1,100
""",
    "surveys.csv": """
external_id,customer_external_id,answered_at,kind,score,channel,comment
s1,c1,2024-03-01,NPS,9,email,"great
service"
s2,c2,2024-03-02,csat,2.5,,
""",
    "opportunities.csv": """
external_id,customer_external_id,opened_at,stage,amount,probability,expected_close_on,owner_rep_external_id,closed_at,outcome
p1,c1,2024-02-10,proposal,12000,40%,2024-06-30,r1,,
p2,c2,2024-02-11,closed,3000,1,,,2024-03-15,Won
""",
    "invoices.csv": """
external_id,customer_external_id,issued_at,due_at,amount,paid_at
i1,c1,2024-02-01,,20,2024-02-10
i2,c2,2024-02-03,,100,
i3,c2,2024-02-03,2024-02-20,5,2024-02-25
""",
}


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text.lstrip(), encoding="utf-8")
    return directory


@pytest.fixture
def whole(tmp_path) -> Path:
    return write(tmp_path / "whole", FILES)


def rows(engine, sql: str, **params) -> dict:
    """First column -> the row, for a query selecting the external id first."""
    with engine.connect() as conn:
        return {r[0]: r for r in conn.execute(sa.text(sql), params)}


def contents(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
                for t in SQLModel.metadata.sorted_tables}


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("customers", "products", "orders", *NEW_TABLES)}


def day(value) -> str:
    return None if value is None else str(value)[:10]


def test_every_new_file_and_column_is_stored(engine, whole):
    report = import_directory(engine, whole)
    assert {t: report.tables[t].inserted for t in NEW_TABLES} == {"surveys": 2, "opportunities": 2, "invoices": 3}

    customers = rows(engine, "SELECT external_id, payment_terms_days, credit_grade, credit_limit, consent, consent_at "
                             "FROM customers")
    c1, c2 = customers["c1"], customers["c2"]
    assert (c1.payment_terms_days, c1.credit_grade, c1.credit_limit, bool(c1.consent), day(c1.consent_at)) == (
        14, "A", 5000.0, True, "2024-01-10")
    assert (c2.payment_terms_days, c2.credit_grade, c2.credit_limit, bool(c2.consent), c2.consent_at) == (
        None, None, None, False, None)
    assert {k: r.category for k, r in rows(engine, "SELECT sku, category FROM products").items()} == {
        "A": "tools", "B": "service"}

    surveys = rows(engine, "SELECT s.external_id, c.external_id AS customer, s.answered_at, s.kind, s.score, "
                           "s.channel, s.comment FROM surveys s JOIN customers c ON c.id = s.customer_id")
    assert (surveys["s1"].customer, day(surveys["s1"].answered_at), surveys["s1"].kind, surveys["s1"].score) == (
        "c1", "2024-03-01", "nps", 9.0)  # the kind in any case, stored lower case
    assert surveys["s1"].comment == "great\nservice" and surveys["s1"].channel == "email"
    assert (surveys["s2"].kind, surveys["s2"].score, surveys["s2"].channel, surveys["s2"].comment) == (
        "csat", 2.5, None, None)

    deals = rows(engine, "SELECT o.external_id, c.external_id AS customer, r.external_id AS rep, o.opened_at, o.stage, "
                         "o.amount, o.probability, o.expected_close_on, o.closed_at, o.outcome FROM opportunities o "
                         "JOIN customers c ON c.id = o.customer_id LEFT JOIN sales_reps r ON r.id = o.owner_rep_id")
    p1, p2 = deals["p1"], deals["p2"]
    assert (p1.customer, p1.rep, p1.stage, p1.amount, p1.probability, day(p1.expected_close_on), p1.closed_at,
            p1.outcome) == ("c1", "r1", "proposal", 12000.0, pytest.approx(0.4), "2024-06-30", None, None)
    assert (p2.rep, p2.probability, day(p2.closed_at), p2.outcome) == (None, 1.0, "2024-03-15", "won")

    invoices = rows(engine, "SELECT i.external_id, i.issued_at, i.due_at, i.amount, i.paid_at FROM invoices i")
    # no due date given: issued + the customer's terms (c1: 14 days), or 30 days for a customer without terms
    assert [(day(invoices[k].due_at), day(invoices[k].paid_at)) for k in ("i1", "i2", "i3")] == [
        ("2024-02-15", "2024-02-10"), ("2024-03-04", None), ("2024-02-20", "2024-02-25")]
    assert invoices["i2"].amount == 100.0


def test_reimport_changes_nothing(engine, whole):
    import_directory(engine, whole)
    before = contents(engine)
    report = import_directory(engine, whole)
    assert report.changed == 0
    assert {t: report.tables[t].unchanged for t in NEW_TABLES} == {"surveys": 2, "opportunities": 2, "invoices": 3}
    assert contents(engine) == before


def test_a_partial_file_changes_only_its_columns(engine, whole, tmp_path):
    import_directory(engine, whole)
    before = contents(engine)
    later = write(tmp_path / "later", {
        "customers.csv": "external_id,credit_limit\nc1,\n",
        "products.csv": "sku,category\nB,\n",
        # the deal moves on and closes; its amount, probability and owner stay
        "opportunities.csv": "external_id,stage,closed_at,outcome\np1,signed,2024-05-01,lost\n",
        # the payment arrives; the due date computed on the first import stays
        "invoices.csv": "external_id,paid_at\ni2,2024-03-10\n",
        "surveys.csv": "external_id,score\ns2,4\n",
    })
    report = import_directory(engine, later)
    assert {t: report.tables[t].updated for t in ("customers", "products", *NEW_TABLES)} == dict.fromkeys(
        ("customers", "products", *NEW_TABLES), 1)
    after = contents(engine)
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"customers", "products", *NEW_TABLES}
    c1 = rows(engine, "SELECT external_id, payment_terms_days, credit_limit, consent FROM customers")["c1"]
    assert (c1.payment_terms_days, c1.credit_limit, bool(c1.consent)) == (14, None, True)
    p1 = rows(engine, "SELECT external_id, stage, amount, probability, owner_rep_id, closed_at, outcome "
                      "FROM opportunities")["p1"]
    assert (p1.stage, p1.amount, p1.probability, p1.owner_rep_id is not None, day(p1.closed_at), p1.outcome) == (
        "signed", 12000.0, pytest.approx(0.4), True, "2024-05-01", "lost")
    i2 = rows(engine, "SELECT external_id, due_at, paid_at, amount FROM invoices")["i2"]
    assert (day(i2.due_at), day(i2.paid_at), i2.amount) == ("2024-03-04", "2024-03-10", 100.0)
    s2 = rows(engine, "SELECT external_id, kind, score FROM surveys")["s2"]
    assert (s2.kind, s2.score) == ("csat", 4.0)
    assert rows(engine, "SELECT sku, category FROM products")["B"].category is None


def test_due_date_defaults_from_the_stored_customer_terms(engine, whole, tmp_path):
    import_directory(engine, whole)
    more = write(tmp_path / "more", {
        "customers.csv": "external_id,payment_terms_days\nc2,45\n",
        "invoices.csv": "external_id,customer_external_id,issued_at,amount\ni4,c2,2024-04-01,10\ni5,c1,2024-04-01,10\n",
    })
    import_directory(engine, more)
    invoices = rows(engine, "SELECT external_id, due_at FROM invoices")
    # c2's terms come from the same import; c1's were stored by the first one
    assert (day(invoices["i4"].due_at), day(invoices["i5"].due_at)) == ("2024-05-16", "2024-04-15")
    # the terms changing later does not move a stored invoice's due date (it was due on the terms it was issued on)
    assert day(invoices["i2"].due_at) == "2024-03-04"


BAD_ROWS = [  # (file, text replaced, replacement, line reported, words of the reason)
    ("surveys.csv", "2024-03-02,csat", "2024-03-02,ces", 4, "'kind' must be nps or csat, got 'ces'"),
    ("surveys.csv", "NPS,9,", "NPS,11,", 2, "'score' 11 is outside the nps scale 0 .. 10"),
    ("surveys.csv", "csat,2.5", "csat,0", 4, "outside the csat scale 1 .. 5"),
    ("surveys.csv", "s2,c2,2024-03-02", "s2,c9,2024-03-02", 4, "unknown customer 'c9'"),
    ("surveys.csv", "s2,c2,2024-03-02", "s2,c2,2024-03-32", 4, "'answered_at' is not a date"),
    ("surveys.csv", "s2,c2", "s1,c2", 4, "duplicate external_id 's1' (first on line 2)"),
    ("opportunities.csv", "12000,40%", "12000,140%", 2, "'probability' 140% is outside 0 .. 1"),
    ("opportunities.csv", "12000,40%", "12000,40", 2, "'probability' 40 is outside 0 .. 1"),
    ("opportunities.csv", "12000,40%", "-5,40%", 2, "'amount' must not be negative"),
    ("opportunities.csv", "2024-03-15,Won", "2024-03-15,", 3, "'outcome' (won or lost) is required"),
    ("opportunities.csv", "r1,,", "r1,,lost", 2, "without 'closed_at'"),
    ("opportunities.csv", "2024-03-15,Won", "2024-03-15,maybe", 3, "'outcome' must be won or lost"),
    ("opportunities.csv", "2024-03-15,Won", "2024-01-15,Won", 3, "'closed_at' 2024-01-15 is before 'opened_at'"),
    ("opportunities.csv", ",r1,", ",r9,", 2, "unknown owner rep 'r9'"),
    ("opportunities.csv", "proposal", "", 2, "'stage' is empty"),
    ("invoices.csv", "20,2024-02-10", "20,2024-01-10", 2, "'paid_at' 2024-01-10 is before 'issued_at' 2024-02-01"),
    ("invoices.csv", "2024-02-20,5", "2024-01-20,5", 4, "'due_at' 2024-01-20 is before 'issued_at'"),
    ("invoices.csv", ",100,", ",-100,", 3, "'amount' must not be negative"),
    ("invoices.csv", "i2,c2", "i2,c7", 3, "unknown customer 'c7'"),
    ("invoices.csv", "amount,paid_at", "amount,total", 1, "column 6 'total' means the same as 'amount' (column 5)"),
    ("customers.csv", "2024-01-01,14,", "2024-01-01,14.5,", 2, "'payment_terms_days' must be a whole number"),
    ("customers.csv", "2024-01-01,14,", "2024-01-01,-3,", 2, "'payment_terms_days' must be a whole number"),
    ("customers.csv", "2024-01-01,14,", "2024-01-01,99999,", 2, "beyond the sane bound"),
    ("customers.csv", "A,5000,", "A,-1,", 2, "'credit_limit' must not be negative"),
    ("customers.csv", "5000,yes", "5000,maybe", 2, "'consent' must be true or false"),
    ("customers.csv", "yes,2024-01-10", "yes,10/01/2024", 2, "'consent_at' is not a date"),
    ("customers.csv", ",A,", "," + "A" * 21 + ",", 2, "'credit_grade' is 21 characters long, at most 20"),
    ("products.csv", "4,tools", "4," + "t" * 101, 2, "'category' is 101 characters long"),
]


def test_bad_rows_are_reported_with_their_line_and_nothing_is_written(engine, whole):
    """One database for every case (a fresh PostgreSQL database per case would be most of the run)."""
    for file, old, new, line, words in BAD_ROWS:
        good = (whole / file).read_text()
        assert old in good, (file, old)
        (whole / file).write_text(good.replace(old, new, 1))
        with pytest.raises(ImportFailed) as err:
            import_directory(engine, whole)
        (whole / file).write_text(good)
        assert [(p.file, p.line) for p in err.value.problems] == [(file, line)], (new, err.value.problems)
        assert words in err.value.problems[0].reason, (words, err.value.problems[0].reason)
        assert f"{file}, line {line}" in str(err.value)
        assert counts(engine) == dict.fromkeys(counts(engine), 0), new
    import_directory(engine, whole)  # the files as they were import whole
    assert counts(engine) == {"customers": 2, "products": 2, "orders": 2, "surveys": 2, "opportunities": 2,
                              "invoices": 3}


@pytest.mark.parametrize("file, text, words", [
    ("surveys.csv", "external_id,score\ns1,11\n", "'score' 11 is outside the nps scale"),  # the stored kind
    ("opportunities.csv", "external_id,closed_at\np1,2024-05-01\n", "'outcome' (won or lost) is required"),
    ("opportunities.csv", "external_id,outcome\np1,won\n", "without 'closed_at'"),
    ("opportunities.csv", "external_id,closed_at\np2,\n", "without 'closed_at'"),  # reopened, still 'won'
    ("invoices.csv", "external_id,paid_at\ni1,2024-01-01\n", "'paid_at' 2024-01-01 is before 'issued_at' 2024-02-01"),
    ("invoices.csv", "external_id,issued_at\ni1,2024-03-01\n", "'due_at' 2024-02-15 is before 'issued_at'"),
    ("surveys.csv", "external_id,score\ns9,5\n", "'s9' is new, and a new record needs the column(s) "
                                                  "customer_external_id, answered_at, kind"),
])
def test_a_partial_row_is_checked_against_the_stored_record(engine, whole, tmp_path, file, text, words):
    import_directory(engine, whole)
    before = contents(engine)
    later = write(tmp_path / "later", {"customers.csv": "external_id\nc1\n", file: text})
    with pytest.raises(ImportFailed) as err:
        import_directory(engine, later)
    assert [(p.file, p.line) for p in err.value.problems] == [(file, 2)]
    assert words in err.value.problems[0].reason, err.value.problems[0].reason
    assert contents(engine) == before


def test_every_bad_row_is_listed_and_skip_bad_rows_imports_the_rest(engine, whole):
    (whole / "surveys.csv").write_text((whole / "surveys.csv").read_text().replace("NPS,9", "NPS,12"))
    (whole / "invoices.csv").write_text((whole / "invoices.csv").read_text().replace(",100,", ",-100,"))
    (whole / "opportunities.csv").write_text((whole / "opportunities.csv").read_text().replace("p2,c2", "p2,c9"))
    with pytest.raises(ImportFailed) as err:
        import_directory(engine, whole)
    # every bad value at once (an unknown customer is found once the values are good)
    assert sorted((p.file, p.line) for p in err.value.problems) == [("invoices.csv", 3), ("surveys.csv", 2)]
    assert counts(engine)["customers"] == 0
    report = import_directory(engine, whole, skip_bad_rows=True)
    assert [(p.file, p.line) for p in report.skipped] == [
        ("invoices.csv", 3), ("opportunities.csv", 3), ("surveys.csv", 2)]
    assert "unknown customer 'c9'" in report.skipped[1].reason
    assert sorted(rows(engine, "SELECT external_id FROM surveys")) == ["s2"]
    assert sorted(rows(engine, "SELECT external_id FROM opportunities")) == ["p1"]
    assert sorted(rows(engine, "SELECT external_id FROM invoices")) == ["i1", "i3"]


def test_common_crm_spellings_are_understood(engine, tmp_path):
    export = write(tmp_path / "export", {
        "customers.csv": "Customer_ID,Name,Created,Payment_Terms,Credit_Rating,Consent_Date\n"
                         "k1,Acme,2024-01-01,10,B,2024-01-02\n",
        "products.csv": "Product_ID,Name,Product_Category\nW,Widget,tools\n",
        "surveys.csv": "Response_ID,Customer_ID,Date,Type,Rating,Source\nx1,k1,2024-02-01,CSAT,5,phone\n",
        "opportunities.csv": "Deal_ID,Account_ID,Created,Deal_Stage,Value,Win_Probability,Close_Date,Closed,Result\n"
                             "d1,k1,2024-02-01,won,900,0.9,2024-03-01,2024-02-20,WON\n",
        "invoices.csv": "Invoice_Number,Customer_ID,Invoice_Date,Due_Date,Total,Payment_Date\n"
                        "n1,k1,2024-02-01,,50,2024-02-05\n",
    })
    report = import_directory(engine, export)
    assert report.ignored == []
    k1 = rows(engine, "SELECT external_id, payment_terms_days, credit_grade, consent_at FROM customers")["k1"]
    assert (k1.payment_terms_days, k1.credit_grade, day(k1.consent_at)) == (10, "B", "2024-01-02")
    assert rows(engine, "SELECT sku, category FROM products")["W"].category == "tools"
    x1 = rows(engine, "SELECT external_id, kind, score, channel FROM surveys")["x1"]
    assert (x1.kind, x1.score, x1.channel) == ("csat", 5.0, "phone")
    d1 = rows(engine, "SELECT external_id, amount, probability, expected_close_on, closed_at, outcome "
                      "FROM opportunities")["d1"]
    assert (d1.amount, d1.probability, day(d1.expected_close_on), day(d1.closed_at), d1.outcome) == (
        900.0, 0.9, "2024-03-01", "2024-02-20", "won")
    n1 = rows(engine, "SELECT external_id, due_at, amount, paid_at FROM invoices")["n1"]
    assert (day(n1.due_at), n1.amount, day(n1.paid_at)) == ("2024-02-11", 50.0, "2024-02-05")


ON = date(2024, 6, 30)
RULES = (DEFAULT_RULES.read_text() + "\ntag late_payer if count(invoice where overdue) >= 1\n"
         'tag buys_service if count(order_line where category = "service") >= 1\n')


def tags(engine) -> dict[str, list[str]]:
    """Each customer's current tags (raw SQL: SQLite hands the JSON column back as text)."""
    with engine.connect() as conn:
        return {r.external_id: sorted(json.loads(r.tags) if isinstance(r.tags, str) else r.tags)
                for r in conn.execute(sa.text("SELECT c.external_id, e.tags FROM customer_evaluations e "
                                              "JOIN customers c ON c.id = e.customer_id"))}


def test_an_imported_overdue_invoice_changes_the_evaluation_in_the_import(engine, whole, tmp_path):
    (whole / "invoices.csv").unlink()
    import_directory(engine, whole)
    publish(engine, RULES, as_of=ON)
    assert "late_payer" not in tags(engine)["c1"]
    assert "buys_service" in tags(engine)["c2"] and "buys_service" not in tags(engine)["c1"]

    overdue = write(tmp_path / "overdue", {
        "customers.csv": "external_id\nc1\n",
        "invoices.csv": "external_id,customer_external_id,issued_at,amount\ni9,c1,2024-05-01,80\n",  # due 05-15
    })
    report = import_directory(engine, overdue)
    assert report.reevaluated == 1
    assert "late_payer" in tags(engine)["c1"] and "late_payer" not in tags(engine)["c2"]
    with engine.connect() as conn:
        moves = conn.execute(sa.text("SELECT c.external_id, t.kind, t.new_value, t.cause, t.cause_record_kind "
                                     "FROM tier_changes t JOIN customers c ON c.id = t.customer_id "
                                     "WHERE t.cause = 'NEW_DATA'")).all()
    assert [tuple(m) for m in moves if m.kind == "tag"] == [("c1", "tag", "late_payer", "NEW_DATA", "import")]
    assert import_directory(engine, overdue).reevaluated == 0  # the same file again changes nothing

    paid = write(tmp_path / "paid", {"customers.csv": "external_id\nc1\n",
                                     "invoices.csv": "external_id,paid_at\ni9,2024-06-01\n"})
    assert import_directory(engine, paid).reevaluated == 1
    assert "late_payer" not in tags(engine)["c1"]

    # a product's new category is read by the rules over order lines: its buyers are re-evaluated
    recategorised = write(tmp_path / "recategorised", {"customers.csv": "external_id\nc1\n",
                                                       "products.csv": "sku,category\nA,service\nB,tools\n"})
    assert import_directory(engine, recategorised).reevaluated == 2
    assert "buys_service" in tags(engine)["c1"] and "buys_service" not in tags(engine)["c2"]
