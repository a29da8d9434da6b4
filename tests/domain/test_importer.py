"""CSV import: CDNOW loads whole, re-import changes nothing, a bad row rejects everything with its line."""
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.import_rows import ImportFailed
from domain.importer import import_directory
from domain.models import Customer, Order


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table.__table__)).scalar_one()


def snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
                for t in ("customers", "orders", "order_lines", "complaints", "deliveries", "interactions")}


def write(dir_: Path, name: str, text: str) -> None:
    (dir_ / name).write_text(text.lstrip(), encoding="utf-8")


def test_cdnow_imports_all_customers_and_orders(engine, cdnow_dir):
    report = import_directory(engine, cdnow_dir)
    assert count(engine, Customer) == 2357
    assert count(engine, Order) == 6919
    assert report.tables["customers"].inserted == 2357
    with engine.connect() as conn:
        # no costs in the source: margin is unknown, not zero
        assert conn.execute(sa.text("select count(*) from orders where margin is not null")).scalar_one() == 0
        total = conn.execute(sa.text("select sum(amount) from orders")).scalar_one()
    expected = sum(float(line.split(",")[5]) for line in (cdnow_dir / "orders.csv").read_text().splitlines()[1:])
    assert total == pytest.approx(expected, rel=1e-9)


def test_reimport_changes_nothing(engine, cdnow_dir):
    import_directory(engine, cdnow_dir)
    before = snapshot(engine)
    report = import_directory(engine, cdnow_dir)
    assert report.changed == 0
    assert report.tables["orders"].unchanged == 6919
    assert snapshot(engine) == before


def test_bad_date_names_line_and_leaves_database_as_it_was(engine, cdnow_dir, tmp_path):
    import_directory(engine, cdnow_dir)
    before = snapshot(engine)
    bad = tmp_path / "bad"
    shutil.copytree(cdnow_dir, bad)
    lines = (bad / "orders.csv").read_text().splitlines()
    fields = lines[4000].split(",")
    fields[2] = "1997-13-45"
    lines[4000] = ",".join(fields)
    # also change a customer name so a half-import would be visible
    cust = (bad / "customers.csv").read_text().replace("CDNOW customer 0001", "Renamed", 1)
    (bad / "customers.csv").write_text(cust)
    (bad / "orders.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFailed) as err:
        import_directory(engine, bad)
    assert [(p.file, p.line) for p in err.value.problems] == [("orders.csv", 4001)]
    assert "ordered_at" in err.value.problems[0].reason and "1997-13-45" in err.value.problems[0].reason
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("select name from customers where external_id='0001'")).scalar_one() == "CDNOW customer 0001"


@pytest.fixture
def small(tmp_path) -> Path:
    d = tmp_path / "small"
    d.mkdir()
    write(d, "reps.csv", """
external_id,name,email,region
r1,Ann,ann@example.com,east
""")
    write(d, "customers.csv", """
external_id,name,region,industry,size,owner_rep_external_id,seasonal,blocked_from,created_at,parent_external_id,referred_by_external_id,attr.segment
c2,Child,east,retail,small,r1,false,,2024-01-05,c1,c3,b2b
c1,Parent,east,retail,large,r1,yes,,2024-01-01,,,b2g
c3,Referrer,west,hvac,small,,0,2025-06-01,2024-01-01,,,
""")
    write(d, "products.csv", """
sku,name,unit_cost,seasonal
A,Widget,4,false
B,Gadget,,true
""")
    write(d, "orders.csv", """
order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price,unit_cost,is_return
o1,c1,2024-02-01,A,10,10,,
o1,c1,2024-02-01,A,1,10,5,
o2,c1,2024-03-01,B,2,50,,
o3,c2,2024-03-02,A,-1,10,,true
""")
    write(d, "complaints.csv", """
external_id,customer_external_id,order_external_id,opened_at,due_at,resolved_at,category,cost
k1,c1,o1,2024-02-03,2024-02-10,,billing,30
""")
    write(d, "deliveries.csv", """
external_id,order_external_id,promised_at,delivered_at,delay_reason,cost
d1,o1,2024-02-05,2024-02-09,weather,12.5
""")
    write(d, "interactions.csv", """
external_id,customer_external_id,rep_external_id,occurred_at,kind,cost,note
i1,c1,r1,2024-04-01,win_back,20,called
""")
    return d


def test_all_files_and_links(engine, small):
    import_directory(engine, small)
    with engine.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(sa.text(
            "select c.external_id, p.external_id as parent, r.external_id as referrer, c.seasonal, c.attributes "
            "from customers c left join customers p on p.id = c.parent_id left join customers r on r.id = c.referred_by_id"))}
        assert rows["c2"].parent == "c1" and rows["c2"].referrer == "c3"
        assert bool(rows["c1"].seasonal) is True and bool(rows["c3"].seasonal) is False
        o1 = conn.execute(sa.text("select amount, cost_of_goods, margin, line_count from orders where external_id='o1'")).one()
        # line 1 falls back to the product cost 4, line 2 has its own cost 5
        assert (o1.amount, o1.cost_of_goods, o1.margin, o1.line_count) == (110, 45, 65, 2)
        o2 = conn.execute(sa.text("select amount, margin from orders where external_id='o2'")).one()
        assert o2.amount == 100 and o2.margin is None  # product B has no cost: margin unknown
        o3 = conn.execute(sa.text("select amount from orders where external_id='o3'")).scalar_one()
        assert o3 == -10
        d = conn.execute(sa.text("select d.customer_id = o.customer_id from deliveries d join orders o on o.id = d.order_id")).scalar_one()
        assert d


def test_changed_row_updates_record(engine, small):
    import_directory(engine, small)
    text = (small / "orders.csv").read_text().replace("o2,c1,2024-03-01,B,2,50", "o2,c1,2024-03-01,B,3,50")
    (small / "orders.csv").write_text(text)
    report = import_directory(engine, small)
    assert report.tables["orders"].updated == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("select amount from orders where external_id='o2'")).scalar_one() == 150
        assert conn.execute(sa.text("select count(*) from order_lines")).scalar_one() == 4


@pytest.mark.parametrize("file, old, new, line, words", [
    ("orders.csv", "o2,c1,2024-03-01", "o2,c9,2024-03-01", 4, "unknown customer 'c9'"),
    ("orders.csv", "o2,c1,2024-03-01,B,2", "o2,c1,2024-03-01,B,-2", 4, "negative quantity"),
    ("orders.csv", "o2,c1,2024-03-01,B,2,50", "o2,c1,2024-03-01,B,2,fifty", 4, "'unit_price' is not a number"),
    ("customers.csv", "c3,Referrer,west,hvac,small,,0", "c3,Referrer,west,hvac,small,r9,0", 4, "unknown owner rep 'r9'"),
    ("customers.csv", "2024-01-01,,,b2g", "2024-01-01,c2,,b2g", 2, "cycle"),
    ("complaints.csv", "k1,c1,o1", "k1,c2,o1", 2, "belongs to another customer"),
    ("deliveries.csv", "d1,o1", "d1,o77", 2, "unknown order 'o77'"),
    ("orders.csv", "sku,quantity", "sku,how_many", 1, "missing required column(s): quantity"),
    ("interactions.csv", "i1,c1,r1,2024-04-01", "i1,c1,r1,April", 2, "'occurred_at' is not a date"),
])
def test_bad_rows_are_reported_and_nothing_written(engine, small, file, old, new, line, words):
    path = small / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ImportFailed) as err:
        import_directory(engine, small)
    problem = err.value.problems[0]
    assert (problem.file, problem.line) == (file, line)
    assert words in problem.reason
    assert f"{file}, line {line}" in str(err.value)
    assert snapshot(engine) == dict.fromkeys(snapshot(engine), 0)


def test_every_bad_row_is_listed(engine, small):
    path = small / "orders.csv"
    path.write_text(path.read_text().replace("2024-02-01", "yesterday"))
    with pytest.raises(ImportFailed) as err:
        import_directory(engine, small)
    assert [p.line for p in err.value.problems] == [2, 3]


@pytest.mark.parametrize("raw, ok", [
    ("2024-02-01", True), ("2024-02-01T10:30:00", True), ("2024-02-01 23:59:59", True),
    ("2024-02-01T10:30:00Z", True), ("2024-02-01T10:30:00+02:00", True),
    ("2024-2-1", False), ("01/02/2024", False), ("2024-02-30", False), ("2024-02-01X", False), ("20240201", False),
])
def test_dates_with_a_time_part_are_accepted(engine, small, raw, ok):
    path = small / "orders.csv"
    path.write_text(path.read_text().replace("o2,c1,2024-03-01", f"o2,c1,{raw}"))
    if ok:
        import_directory(engine, small)
        with engine.connect() as conn:
            assert str(conn.execute(sa.text("select ordered_at from orders where external_id='o2'")).scalar_one()
                       )[:10] == raw[:10]
    else:
        with pytest.raises(ImportFailed) as err:
            import_directory(engine, small)
        assert err.value.problems[0].line == 4 and "ordered_at" in err.value.problems[0].reason


def test_crlf_bom_and_quoted_fields(engine, small):
    text = (small / "customers.csv").read_text().replace("c3,Referrer,", 'c3,"Referrer, Inc.",')
    (small / "customers.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    import_directory(engine, small)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select name from customers where external_id='c3'")).scalar_one() == "Referrer, Inc."


def test_skip_bad_rows_imports_the_rest_and_lists_the_bad(engine, small):
    path = small / "orders.csv"
    path.write_text(path.read_text().replace("o2,c1,2024-03-01", "o2,c1,March").replace("o3,c2", "o3,c9"))
    cust = small / "customers.csv"
    cust.write_text(cust.read_text().replace("c3,Referrer,west,hvac,small,,0", "c3,Referrer,west,hvac,small,r9,0"))
    with pytest.raises(ImportFailed):
        import_directory(engine, small)  # the default: all or nothing
    report = import_directory(engine, small, skip_bad_rows=True)
    assert [(p.file, p.line) for p in report.skipped] == [
        ("customers.csv", 2),  # c2 refers to c3, which was left out: its referrer link is dropped
        ("customers.csv", 4), ("orders.csv", 4), ("orders.csv", 5)]
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.execute(sa.text("select external_id from customers"))) == ["c1", "c2"]
        assert sorted(r[0] for r in conn.execute(sa.text("select external_id from orders"))) == ["o1"]
        assert conn.execute(sa.text("select parent_id is not null from customers where external_id='c2'")).scalar_one()


def test_cli_import_reports_line_and_exit_code(engine, small, empty_db_url, monkeypatch, capsys):
    from cli import main

    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    path = small / "orders.csv"
    path.write_text(path.read_text().replace("o2,c1,2024-03-01", "o2,c1,2024-03-32"))
    assert main(["import", str(small)]) == 1
    assert main(["import", "--skip-bad-rows", str(small)]) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from orders")).scalar_one() == 2


def test_common_header_spellings_are_understood(engine, tmp_path):
    d = tmp_path / "export"
    d.mkdir()
    write(d, "customers.csv", """
Customer_ID,Name,Region,Owner,Created,Parent,attr.Segment
k1,Acme,east,,2024-01-01,,b2b
k2,Acme Sub,east,,2024-01-02,k1,
""")
    write(d, "orders.csv", """
Order_ID,Customer_ID,Order_Date,SKU,Qty,Price,Cost
x1,k1,2024-02-01,W,2,50,30
""")
    import_directory(engine, d)
    with engine.connect() as conn:
        row = conn.execute(sa.text("select amount, margin from orders where external_id = 'x1'")).one()
        assert (row.amount, row.margin) == (100, 40)
        child = conn.execute(sa.text("select p.external_id from customers c join customers p on p.id = c.parent_id "
                                     "where c.external_id = 'k2'")).scalar_one()
        assert child == "k1"
        attrs = conn.execute(sa.select(Customer.__table__.c.attributes).where(
            Customer.__table__.c.external_id == "k1")).scalar_one()
        assert attrs == {"Segment": "b2b"}
