"""Corrupt import files are refused with file, line and reason, and the database is left as it was (issue 7,
defect 6). Targeted cases for each corruption found in use, a fuzz loop over corrupted copies of the CDNOW and
test CSVs, the CLI's exit code and output, and PostgreSQL for a NUL byte and the transaction.
"""
from __future__ import annotations

import csv
import io
import math
import os
import random
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from domain.db import make_engine, migrate
from domain.import_rows import ALIASES, ImportFailed
from domain.importer import import_directory
from tests_support import GRAPH_FIXTURE, require_cdnow

REPO = Path(__file__).resolve().parents[2]


def contents(engine) -> dict[str, list[tuple]]:
    """Every row of every table, in key order: the database as data, to compare before and after."""
    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A SQLite file with the test CSVs imported, built once; each test works on its own copy."""
    path = tmp_path_factory.mktemp("baseline") / "base.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    import_directory(engine, GRAPH_FIXTURE)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_base(baseline, tmp_path):
    path = tmp_path / "case.db"
    shutil.copy(baseline, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def files(tmp_path) -> Path:
    d = tmp_path / "csv"
    shutil.copytree(GRAPH_FIXTURE, d)
    return d


def edit(path: Path, change: Callable[[bytes], bytes]) -> None:
    path.write_bytes(change(path.read_bytes()))


def replace(old: str, new: str | bytes) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        assert old.encode() in data, old
        return data.replace(old.encode(), new if isinstance(new, bytes) else new.encode(), 1)
    return change


# (file, change, line, words in the reason): each corruption found in use, with the line it must be reported at
CASES = {
    "stray quote": ("customers.csv", replace("C002,Customer 2", 'C002,"Customer 2'), 3, "stray quote"),
    "quote closed lines later": ("customers.csv", lambda b: replace("C005,Customer 5", 'C005,Customer 5"')(
        replace("C002,Customer 2", 'C002,"Customer 2')(b)), 3, "'name' holds a line break"),
    "cut mid-line": ("orders.csv", lambda b: b[:-3], 181, "cut short"),
    "fewer fields": ("orders.csv", replace("O001-0,C001,2024-01-02,A,1,10,", "O001-0,C001,2024-01-02,A,1,10"), 2,
                     "6 field(s), the header has 7"),
    "more fields": ("orders.csv", replace("O001-0,C001,2024-01-02,A,1,10,", "O001-0,C001,2024-01-02,A,1,10,,x"), 2,
                    "8 field(s), the header has 7"),
    "repeated column": ("customers.csv", replace("external_id,name,region", "external_id,name,name"), 1,
                        "column 3 'name' repeats column 2"),
    "repeated via alias": ("customers.csv", replace("external_id,name,", "external_id,name,customer_id,"), 1,
                           "means the same as 'external_id'"),
    "attribute without a name": ("customers.csv", replace("attr.segment", "attr."), 1, "no attribute name"),
    "repeated via case": ("customers.csv", replace("attr.segment", "attr.segment,attr.Segment"), 1,
                          "means the same as 'attr.segment'"),
    "1e200 quantity": ("orders.csv", replace("O001-0,C001,2024-01-02,A,1,10", "O001-0,C001,2024-01-02,A,1e200,10"), 2,
                       "'quantity' is 1e200, beyond the sane bound"),
    "1e200 price": ("orders.csv", replace("O001-0,C001,2024-01-02,A,1,10", "O001-0,C001,2024-01-02,A,1,1e200"), 2,
                    "'unit_price' is 1e200"),
    "overflowing line": ("orders.csv", replace("O001-0,C001,2024-01-02,A,1,10", "O001-0,C001,2024-01-02,A,1e9,1e9"), 2,
                         "beyond the sane bound"),
    "nan": ("orders.csv", replace("O001-0,C001,2024-01-02,A,1,10", "O001-0,C001,2024-01-02,A,1,nan"), 2,
            "not a finite number"),
    "inf cost": ("deliveries.csv", replace("D001-0,O001-0,2024-01-05,2024-01-05,,", "D001-0,O001-0,2024-01-05,2024-01-05,,inf"),
                 2, "not a finite number"),
    "latin-1 byte": ("customers.csv", replace("Customer 3,", b"Customer \xe93,"), 4, "byte 0xE9 is not UTF-8"),
    "UTF-16": ("reps.csv", lambda b: b.decode().encode("utf-16"), 1, "the file is UTF-16: save it as UTF-8"),
    "UTF-16 without BOM": ("reps.csv", lambda b: b.decode().encode("utf-16-le"), 1, "looks like UTF-16"),
    "131,073-character field": ("customers.csv", replace("Customer 3,", "x" * 131_073 + ","), 4,
                                "a field is longer than 131,072 characters"),
    "5,000-character name": ("customers.csv", replace("Customer 3,", "x" * 5_000 + ","), 4,
                             "'name' is 5,000 characters long, at most 300"),
    "NUL byte": ("customers.csv", replace("Customer 3,", "Customer\x003,"), 4, "NUL byte"),
    "empty file": ("reps.csv", lambda b: b"", 1, "the file is empty"),
    "date at the calendar's edge": ("orders.csv", replace("O001-0,C001,2024-01-02", "O001-0,C001,0001-01-01"), 2,
                                    "outside 1900-01-01"),
    "note swallowing rows": ("interactions.csv", replace("I14,C014,r1,2024-03-02,win_back,20,call",
                                                         'I14,C014,r1,2024-03-02,win_back,20,"call'), 3,
                             "stray quote"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_corrupt_file_is_refused_with_its_line(sqlite_base, files, case):
    file, change, line, words = CASES[case]
    before = contents(sqlite_base)
    edit(files / file, change)
    with pytest.raises(ImportFailed) as err:
        import_directory(sqlite_base, files)
    problem = err.value.problems[0]
    assert (problem.file, problem.line) == (file, line), str(err.value)
    assert words in problem.reason
    assert f"{file}, line {line}: " in str(err.value)
    assert contents(sqlite_base) == before


@pytest.mark.parametrize("case", ["stray quote", "latin-1 byte", "cut mid-line", "repeated column", "UTF-16"])
def test_skipping_bad_rows_never_skips_past_a_corrupt_file(sqlite_base, files, case):
    """--skip-bad-rows leaves out bad rows, not the rest of a file that cannot be read (nor a cut one's tail)."""
    file, change, line, words = CASES[case]
    before = contents(sqlite_base)
    edit(files / file, change)
    try:
        report = import_directory(sqlite_base, files, skip_bad_rows=True)
    except ImportFailed as err:
        assert err.problems[0].line == line and words in err.problems[0].reason
        assert contents(sqlite_base) == before
    else:  # only the cut last line may be left out as a bad row, and it is listed
        assert case == "cut mid-line"
        assert [(p.file, p.line) for p in report.skipped] == [(file, line)]


def test_a_multi_line_note_is_kept(sqlite_base, files):
    edit(files / "interactions.csv", replace("I14,C014,r1,2024-03-02,win_back,20,call",
                                             'I14,C014,r1,2024-03-02,win_back,20,"called twice\nno answer"'))
    import_directory(sqlite_base, files)
    with sqlite_base.connect() as conn:
        assert conn.execute(sa.text("select note from interactions where external_id = 'I14'")).scalar_one() == \
            "called twice\nno answer"


def test_a_whole_file_without_a_final_line_break_names_the_last_line(sqlite_base, files):
    edit(files / "reps.csv", lambda b: b.rstrip(b"\r\n"))
    with pytest.raises(ImportFailed) as err:
        import_directory(sqlite_base, files)
    assert str(err.value.problems[0]).startswith("reps.csv, line 3: the last line does not end with a line break")


# ---- the fuzz loop: corrupted copies of the CDNOW and test CSVs, each refused or stored exactly ----


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _data_line(rng: random.Random, data: bytes) -> int:
    lines = _lines(data)
    return rng.randrange(1, max(2, len(lines) - 1))


def _on_line(data: bytes, n: int, change: Callable[[bytes], bytes]) -> bytes:
    """`change` applied to line n's text, its line end (LF or CRLF) kept."""
    lines = _lines(data)
    end = b"\r" if lines[n].endswith(b"\r") else b""
    lines[n] = change(lines[n].removesuffix(b"\r")) + end
    return b"\n".join(lines)


def _cell(rng, data, columns=None) -> bytes:
    """Replace one cell (of one of `columns` when given) on a random data line with a random bad value."""
    header = _lines(data)[0].decode().split(",")
    usable = [i for i, c in enumerate(header) if columns is None or c in columns]
    if not usable:
        return data
    i = rng.choice(usable)
    value = rng.choice(["1e200", "-1e200", "nan", "inf", "1e13", "1e308", "-0", "0001-01-01", "9999-12-31", "x" * 400])

    def change(line: bytes) -> bytes:
        cells = line.split(b",")
        if i < len(cells):
            cells[i] = value.encode()
        return b",".join(cells)
    return _on_line(data, _data_line(rng, data), change)


def _alias_repeat(rng, data, name) -> bytes:
    aliases = [a for a in ALIASES.get(name, {})]
    extra = rng.choice(aliases) if aliases else _lines(data)[0].split(b",")[0].decode().upper()
    return _on_line(data, 0, lambda h: h + b"," + extra.encode())


MUTATIONS: dict[str, Callable[[random.Random, bytes, str], bytes]] = {
    "cut at a random byte": lambda rng, d, n: d[:rng.randrange(1, len(d))],
    "cut after a line": lambda rng, d, n: b"\n".join(_lines(d)[:_data_line(rng, d) + 1]) + b"\n",
    "stray quote": lambda rng, d, n: _on_line(d, _data_line(rng, d), lambda l: l.replace(b",", b',"', 1)),
    "stray quote closed later": lambda rng, d, n: _on_line(
        _on_line(d, 1, lambda l: l.replace(b",", b',"', 1)), min(3, len(_lines(d)) - 2),
        lambda l: l.replace(b",", b'",', 1)),
    "repeated header column": lambda rng, d, n: _on_line(
        d, 0, lambda h: h + b"," + rng.choice(h.split(b","))),
    "repeated via alias or case": lambda rng, d, n: _alias_repeat(rng, d, n),
    "latin-1 byte": lambda rng, d, n: _on_line(d, _data_line(rng, d), lambda l: l[:1] + b"\xe9" + l[1:]),
    "UTF-16": lambda rng, d, n: d.decode().encode("utf-16"),
    "NUL byte": lambda rng, d, n: (lambda i: d[:i] + b"\x00" + d[i:])(rng.randrange(0, len(d))),
    "huge field": lambda rng, d, n: _on_line(d, _data_line(rng, d), lambda l: l.replace(b",", b"," + b"9" * 131_073 + b",", 1)),
    "extra field": lambda rng, d, n: _on_line(d, _data_line(rng, d), lambda l: l + b",extra"),
    "missing field": lambda rng, d, n: _on_line(d, _data_line(rng, d), lambda l: l.rsplit(b",", 1)[0]),
    "bad number": lambda rng, d, n: _cell(rng, d, {"quantity", "unit_price", "unit_cost", "cost"}),
    "bad cell": lambda rng, d, n: _cell(rng, d),
    "deleted byte": lambda rng, d, n: (lambda i: d[:i] + d[i + 1:])(rng.randrange(0, len(d) - 1)),
    "repeated line": lambda rng, d, n: (lambda i: b"\n".join(_lines(d)[:i + 1] + _lines(d)[i:]))(_data_line(rng, d)),
    "blank line": lambda rng, d, n: (lambda i: b"\n".join(_lines(d)[:i] + [b""] + _lines(d)[i:]))(_data_line(rng, d)),
    "CRLF and BOM": lambda rng, d, n: b"\xef\xbb\xbf" + d.replace(b"\n", b"\r\n"),
}


def careful_parse(directory: Path) -> dict[str, list[dict[str, str]]]:
    """An independent reading of a directory the importer accepted: strict UTF-8 and CSV, one record per line.
    Raises AssertionError when the files could not have been read faithfully (a harmful acceptance)."""
    parsed = {}
    for path in sorted(directory.glob("*.csv")):
        data = path.read_bytes()
        assert b"\x00" not in data and data.endswith(b"\n"), f"{path.name}: accepted a NUL or a cut file"
        text = data.decode("utf-8").removeprefix("\ufeff")
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
        nonblank = [ln for ln in text.splitlines() if ln.strip()]
        assert len(records) == len(nonblank), f"{path.name}: {len(nonblank) - len(records)} line(s) swallowed"
        header = [h.strip().lower() for h in records[0]]
        assert len(set(header)) == len(header), f"{path.name}: accepted a repeated column"
        assert all(len(r) == len(header) for r in records[1:]), f"{path.name}: accepted a row of the wrong width"
        parsed[path.name] = [dict(zip(header, r)) for r in records[1:]]
    return parsed


def check_stored(engine, parsed: dict[str, list[dict[str, str]]]) -> list[str]:
    """What differs between the database and the careful parse of the accepted files."""
    wrong = []
    with engine.connect() as conn:
        def stored(sql: str) -> dict:
            return {r[0]: r[1:] for r in conn.execute(sa.text(sql))}

        # a column absent from the file (a header typo, a partial file) is not written: compare the present ones
        for file, sql, key, column in (
                ("customers.csv", "select external_id, name from customers", "external_id", "name"),
                ("reps.csv", "select external_id, name from sales_reps", "external_id", "name"),
                ("products.csv", "select sku, name from products", "sku", "name"),
                ("complaints.csv", "select external_id, opened_at from complaints", "external_id", "opened_at"),
                ("deliveries.csv", "select external_id, promised_at from deliveries", "external_id", "promised_at"),
                ("interactions.csv", "select external_id, occurred_at from interactions", "external_id", "occurred_at")):
            rows = [r for r in parsed.get(file, []) if column in r]
            table = stored(sql) if rows else {}
            for r in rows:
                got = table.get(r[key].strip())
                if got is None or str(got[0])[:10] != r[column].strip()[:10]:
                    wrong.append(f"{file} {r[key]!r}: stored {got}, file says {r[column]!r}")
        orders: dict[str, list[dict]] = defaultdict(list)
        for r in parsed.get("orders.csv", []):
            orders[r["order_external_id"].strip()].append(r)
        table = stored("select external_id, amount, line_count from orders") if orders else {}
        for ext, group in orders.items():
            amount = sum(float(r["quantity"]) * float(r["unit_price"]) for r in group)
            got = table.get(ext)
            if got is None or got[1] != len(group) or not math.isclose(got[0], amount, rel_tol=1e-9, abs_tol=1e-6):
                wrong.append(f"order {ext!r}: stored {got}, file says {amount} over {len(group)} line(s)")
        # whatever was accepted, nothing infinite, NaN or absurd is stored
        if conn.execute(sa.text("select count(*) from orders where not (abs(amount) <= 1e15)")).scalar_one():
            wrong.append("an order amount is not finite")
    return wrong


def fuzz(source: Path, names: list[str], tmp_path: Path, seed: int, rounds: int) -> tuple[list[str], dict[str, int]]:
    db = tmp_path / "fuzz.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    import_directory(engine, source)
    rng = random.Random(seed)
    failures, outcome = [], {"refused": 0, "accepted": 0}
    before = contents(engine)
    try:
        for n in range(rounds):
            for kind, mutate in MUTATIONS.items():
                name = rng.choice(names)
                case = tmp_path / f"case-{n}-{len(failures)}"
                shutil.rmtree(case, ignore_errors=True)
                shutil.copytree(source, case)
                (case / name).write_bytes(mutate(rng, (source / name).read_bytes(), name))
                label = f"{kind} in {name} (seed {seed}, round {n})"
                try:
                    import_directory(engine, case)
                except ImportFailed as err:
                    outcome["refused"] += 1
                    if not all(p.file.endswith(".csv") and p.line >= 1 and p.reason for p in err.problems):
                        failures.append(f"{label}: a problem without file, line or reason: {err}")
                    if contents(engine) != before:
                        failures.append(f"{label}: refused, but the database changed")
                except Exception as exc:  # noqa: BLE001 - anything else is the defect under test
                    failures.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
                else:
                    outcome["accepted"] += 1
                    try:
                        failures += [f"{label}: {w}" for w in check_stored(engine, careful_parse(case))[:3]]
                    except (AssertionError, KeyError, ValueError, csv.Error) as exc:
                        failures.append(f"{label}: harmful acceptance: {type(exc).__name__}: {exc}")
                    before = contents(engine)
                shutil.rmtree(case)
    finally:
        engine.dispose()
    return failures, outcome


def test_fuzzed_cdnow_files_are_refused_or_stored_exactly(tmp_path):
    failures, outcome = fuzz(require_cdnow(), ["customers.csv", "orders.csv", "products.csv"], tmp_path,
                             seed=7, rounds=2)
    assert failures == []
    assert outcome["refused"] >= 25 and outcome["accepted"] >= 3, outcome  # both branches were exercised


def test_fuzzed_test_files_are_refused_or_stored_exactly(tmp_path):
    names = sorted(p.name for p in GRAPH_FIXTURE.glob("*.csv"))
    failures, outcome = fuzz(GRAPH_FIXTURE, names, tmp_path, seed=11, rounds=10)
    assert failures == []
    assert outcome["refused"] >= 100 and outcome["accepted"] >= 10, outcome


# ---- the command: exit code 1, file and line, no traceback ----


def run_cli(directory: Path, db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", "import sys, cli; sys.exit(cli.main(sys.argv[1:]))", "import",
                           str(directory)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["stray quote", "UTF-16", "131,073-character field", "1e200 quantity", "NUL byte"])
def test_cli_refuses_a_corrupt_file_with_exit_code_1_and_no_traceback(files, tmp_path, baseline, case):
    file, change, line, words = CASES[case]
    db = tmp_path / "cli.db"
    shutil.copy(baseline, db)
    edit(files / file, change)
    result = run_cli(files, db)
    assert result.returncode == 1, result.stderr
    assert f"{file}, line {line}: " in result.stderr and words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_imports_a_good_directory(files, tmp_path):
    result = run_cli(files, tmp_path / "fresh.db")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# ---- PostgreSQL: a NUL byte is refused before the database sees it; a late problem rolls everything back ----


@pytest.mark.postgres
def test_postgres_refuses_a_nul_byte_and_rolls_back_a_late_problem(pg_server, files):
    engine = make_engine(pg_server.new_database())
    try:
        migrate(engine)
        import_directory(engine, files)
        before = contents(engine)
        edit(files / "customers.csv", replace("Customer 3,", "Customer\x003,"))
        with pytest.raises(ImportFailed) as err:
            import_directory(engine, files)
        assert str(err.value.problems[0]).startswith("customers.csv, line 4: holds a NUL byte")
        assert contents(engine) == before
        # every file reads well, but a delivery names an unknown order: found after customers, orders, ... were
        # written inside the transaction, all of which must roll back
        shutil.rmtree(files)
        shutil.copytree(GRAPH_FIXTURE, files)
        edit(files / "customers.csv", replace("C001,Customer 1,", "C001,Renamed,"))
        edit(files / "reps.csv", replace("r1,Ann,", "r1,Annie,"))
        edit(files / "deliveries.csv", replace("D001-0,O001-0,", "D001-0,O999-9,"))
        with pytest.raises(ImportFailed) as err:
            import_directory(engine, files)
        assert [(p.file, p.line) for p in err.value.problems] == [("deliveries.csv", 2)]
        assert contents(engine) == before
    finally:
        engine.dispose()
