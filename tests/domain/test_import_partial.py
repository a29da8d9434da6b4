"""Re-importing a file with only some columns changes only those columns (issue 7, defect 1).

A column absent from the file changes nothing; an empty cell in a present column means what the README says
(clears the value, false for a flag, unknown for a cost; created_at keeps the stored date). One test per file kind.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from domain.import_rows import ImportFailed
from domain.importer import import_directory

BASE = {
    "reps.csv": """
external_id,name,email,region
r1,Ann,ann@example.com,east
r2,Bo,bo@example.com,west
""",
    "customers.csv": """
external_id,name,region,industry,size,owner_rep_external_id,seasonal,blocked_from,created_at,parent_external_id,referred_by_external_id,attr.segment,attr.channel
c1,Parent,east,retail,large,r1,yes,,2024-01-01,,,b2g,web
c2,Child,east,retail,small,r1,false,,2024-01-05,c1,c3,b2b,shop
c3,Referrer,west,hvac,small,r2,0,,2024-01-01,,,,
""",
    "products.csv": """
sku,name,unit_cost,seasonal
A,Widget,4,true
B,Gadget,,false
""",
    "orders.csv": """
order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price,unit_cost,is_return
o1,c1,2024-02-01,A,10,10,,
o1,c1,2024-02-01,A,1,10,5,
o2,c2,2024-03-01,B,2,50,7,
""",
    "complaints.csv": """
external_id,customer_external_id,order_external_id,opened_at,due_at,resolved_at,category,cost
k1,c1,o1,2024-02-03,2024-02-10,,billing,30
""",
    "deliveries.csv": """
external_id,order_external_id,promised_at,delivered_at,delay_reason,cost
d1,o1,2024-02-05,,weather,12.5
""",
    "interactions.csv": """
external_id,customer_external_id,rep_external_id,occurred_at,kind,cost,note
i1,c1,r1,2024-04-01,win_back,20,called
""",
}


def contents(engine) -> dict[str, list[tuple]]:
    """Every row of every table, in id order: the whole database as data."""
    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            order = [c for c in table.primary_key.columns]
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
    return out


def row(engine, table: str, key: str, value: str) -> dict:
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text(f"select * from {table} where {key} = :v"), {"v": value}).mappings().one())
    if isinstance(found.get("attributes"), str):  # SQLite hands JSON back as text in a raw select
        found["attributes"] = json.loads(found["attributes"])
    return found


@pytest.fixture
def base(engine, tmp_path) -> Path:
    """The full base imported; returns an empty directory to put the partial files in."""
    full = tmp_path / "full"
    full.mkdir()
    for name, text in BASE.items():
        (full / name).write_text(text.lstrip(), encoding="utf-8")
    import_directory(engine, full)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "customers.csv").write_text(BASE["customers.csv"].lstrip(), encoding="utf-8")  # the one required file
    return partial


def reimport(engine, directory: Path, name: str, text: str):
    (directory / name).write_text(text.lstrip(), encoding="utf-8")
    return import_directory(engine, directory)


def changed_tables(before: dict, after: dict) -> set[str]:
    return {t for t in before if before[t] != after[t]}


@pytest.mark.parametrize("header, line", [
    ("external_id,blocked_from", "c1,2025-06-01"),
    ("external_id,name,blocked_from", "c1,Parent,2025-06-01"),  # the file that wiped region, owner, ... before
])
def test_customers_only_the_columns_in_the_file_change(engine, base, header, line):
    before = row(engine, "customers", "external_id", "c2")
    old = row(engine, "customers", "external_id", "c1")
    reimport(engine, base, "customers.csv", f"{header}\n{line}\n")
    new = row(engine, "customers", "external_id", "c1")
    assert str(new["blocked_from"])[:10] == "2025-06-01"
    assert {k: v for k, v in new.items() if k != "blocked_from"} == {k: v for k, v in old.items() if k != "blocked_from"}
    assert row(engine, "customers", "external_id", "c2") == before  # not in the file: untouched


def test_customer_attributes_absent_from_the_file_stay(engine, base):
    reimport(engine, base, "customers.csv", "external_id,attr.segment,attr.tier_hint\nc1,enterprise,gold\nc2,,\n")
    assert row(engine, "customers", "external_id", "c1")["attributes"] == {
        "segment": "enterprise", "channel": "web", "tier_hint": "gold"}
    # an empty attr.* cell removes that attribute only
    assert row(engine, "customers", "external_id", "c2")["attributes"] == {"channel": "shop"}


def test_customer_empty_cells_mean_what_the_readme_says(engine, base):
    """Present column, empty cell: text and links are cleared, a flag is false, created_at keeps its date."""
    old = row(engine, "customers", "external_id", "c2")
    reimport(engine, base, "customers.csv",
             "external_id,region,owner_rep_external_id,seasonal,created_at,parent_external_id\nc2,,,,,\n")
    new = row(engine, "customers", "external_id", "c2")
    assert (new["region"], new["owner_rep_id"], bool(new["seasonal"]), new["parent_id"]) == (None, None, False, None)
    assert new["created_at"] == old["created_at"] and new["referred_by_id"] == old["referred_by_id"]
    assert new["industry"] == old["industry"] and new["attributes"] == old["attributes"]


def test_customer_links_absent_from_the_file_stay(engine, base):
    old = row(engine, "customers", "external_id", "c2")
    reimport(engine, base, "customers.csv", "external_id,referred_by_external_id\nc2,\n")
    new = row(engine, "customers", "external_id", "c2")
    assert new["parent_id"] == old["parent_id"] is not None and new["referred_by_id"] is None


def test_a_new_record_still_needs_its_columns(engine, base):
    before = contents(engine)
    with pytest.raises(ImportFailed) as err:
        reimport(engine, base, "customers.csv", "external_id,blocked_from\nc1,2025-06-01\nc9,2025-06-01\n")
    assert [(p.file, p.line) for p in err.value.problems] == [("customers.csv", 3)]
    assert "'c9' is new" in err.value.problems[0].reason and "name" in err.value.problems[0].reason
    assert contents(engine) == before


def test_reps_only_the_columns_in_the_file_change(engine, base):
    old = row(engine, "sales_reps", "external_id", "r1")
    reimport(engine, base, "reps.csv", "external_id,region\nr1,north\n")
    assert row(engine, "sales_reps", "external_id", "r1") == {**old, "region": "north"}


# Files with every column needed to create a record but not the optional ones: these wiped the optional
# columns before (email, unit_cost, order, due date, category, cost, delay reason, rep, ...).
@pytest.mark.parametrize("table, file, text, key, changes", [
    ("sales_reps", "reps.csv", "external_id,name\nr1,Annie\n", "r1", {"name": "Annie"}),
    ("products", "products.csv", "sku,name\nA,Widget 2\n", "A", {"name": "Widget 2"}),
    ("complaints", "complaints.csv", "external_id,customer_external_id,opened_at,resolved_at\n"
                                     "k1,c1,2024-02-03,2024-02-08\n", "k1", {"resolved_at": "2024-02-08"}),
    ("deliveries", "deliveries.csv", "external_id,order_external_id,promised_at,delivered_at\n"
                                     "d1,o1,2024-02-05,2024-02-06\n", "d1", {"delivered_at": "2024-02-06"}),
    ("interactions", "interactions.csv", "external_id,customer_external_id,occurred_at,kind,note\n"
                                         "i1,c1,2024-04-01,win_back,no answer\n", "i1", {"note": "no answer"}),
])
def test_optional_columns_absent_from_the_file_stay(engine, base, table, file, text, key, changes):
    key_column = "sku" if table == "products" else "external_id"
    old = row(engine, table, key_column, key)
    reimport(engine, base, file, text)
    new = row(engine, table, key_column, key)
    assert {k: str(new[k])[:10] if "_at" in k else new[k] for k in changes} == changes
    assert {k: v for k, v in new.items() if k not in changes} == {k: v for k, v in old.items() if k not in changes}


def test_products_only_the_columns_in_the_file_change(engine, base):
    old = row(engine, "products", "sku", "A")
    reimport(engine, base, "products.csv", "sku,seasonal\nA,\n")  # an empty flag is false
    assert row(engine, "products", "sku", "A") == {**old, "seasonal": False}
    reimport(engine, base, "products.csv", "sku,unit_cost\nA,\n")  # an empty cost is unknown
    assert row(engine, "products", "sku", "A") == {**old, "seasonal": False, "unit_cost": None}


def test_orders_without_a_cost_column_keep_the_stored_costs(engine, base):
    before = contents(engine)
    # the same orders from an export without costs: every stored line cost (5 and 7 were typed in) stays
    reimport(engine, base, "orders.csv", """
order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price
o1,c1,2024-02-01,A,10,10
o1,c1,2024-02-01,A,1,10
o2,c2,2024-03-01,B,2,50
""")
    assert contents(engine) == before


def test_orders_with_an_empty_cost_use_the_product_cost(engine, base):
    reimport(engine, base, "orders.csv", """
order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price,unit_cost
o1,c1,2024-02-01,A,10,10,
o1,c1,2024-02-01,A,1,10,
""")
    o1 = row(engine, "orders", "external_id", "o1")
    assert (o1["amount"], o1["cost_of_goods"], o1["margin"]) == (110, 44, 66)


def test_complaints_only_the_columns_in_the_file_change(engine, base):
    old = row(engine, "complaints", "external_id", "k1")
    reimport(engine, base, "complaints.csv", "external_id,resolved_at\nk1,2024-02-08\n")
    new = row(engine, "complaints", "external_id", "k1")
    assert str(new["resolved_at"])[:10] == "2024-02-08"
    assert {k: v for k, v in new.items() if k != "resolved_at"} == {k: v for k, v in old.items() if k != "resolved_at"}


def test_complaint_checks_see_the_stored_values(engine, base):
    before = contents(engine)
    with pytest.raises(ImportFailed) as err:
        reimport(engine, base, "complaints.csv", "external_id,resolved_at\nk1,2024-01-01\n")
    assert "before 'opened_at' 2024-02-03" in err.value.problems[0].reason
    with pytest.raises(ImportFailed) as err:  # moving the complaint to c2 while it names c1's order
        reimport(engine, base, "complaints.csv", "external_id,customer_external_id\nk1,c2\n")
    assert "belongs to another customer" in err.value.problems[0].reason
    assert contents(engine) == before


def test_deliveries_only_the_columns_in_the_file_change(engine, base):
    old = row(engine, "deliveries", "external_id", "d1")
    reimport(engine, base, "deliveries.csv", "external_id,delivered_at\nd1,2024-02-06\n")
    new = row(engine, "deliveries", "external_id", "d1")
    assert str(new["delivered_at"])[:10] == "2024-02-06"
    assert {k: v for k, v in new.items() if k != "delivered_at"} == {k: v for k, v in old.items() if k != "delivered_at"}


def test_interactions_only_the_columns_in_the_file_change(engine, base):
    old = row(engine, "interactions", "external_id", "i1")
    reimport(engine, base, "interactions.csv", "external_id,note\ni1,left a message\n")
    assert row(engine, "interactions", "external_id", "i1") == {**old, "note": "left a message"}


def test_a_partial_reimport_of_the_same_values_changes_nothing(engine, base):
    before = contents(engine)
    report = reimport(engine, base, "customers.csv", "external_id,region,attr.segment\nc1,east,b2g\nc3,west,\n")
    assert report.changed == 0 and contents(engine) == before


def test_a_misspelt_column_changes_nothing_and_is_named(engine, base):
    before = contents(engine)
    report = reimport(engine, base, "customers.csv", "external_id,blocked_form,attr.tier\nc1,2025-06-01,gold\n")
    assert report.ignored == ["customers.csv: blocked_form"]  # attr.* columns are read: only the typo is named
    after = contents(engine)
    assert changed_tables(before, after) == {"customers"}
    assert row(engine, "customers", "external_id", "c1")["blocked_from"] is None
