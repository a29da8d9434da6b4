"""The SQL and Python back ends agree on random rule sets over edge-heavy random data, on SQLite and PostgreSQL.

Rule trees are generated directly as nodes (metrics with sum/count/avg/min/max over every source, windows with
offsets, `where` conditions, arithmetic with division, ranks, no-record, flags, customer fields, attributes,
in-lists, and/or/not); data is heavy in edge cases (no orders, ties, zero denominators, records on the first
and last day of windows and one day outside, month ends, unknown margins, blocked on as_of, created after
as_of, and the record flags' date edges: resolved on as_of, on the due date or a day either side, due on as_of,
delivered on the promised date or a day either side, delivered after as_of, win-back kinds in any letter case),
and the whole customer's sources: survey scores on each band's edge, opportunities closed on as_of or a day
either side, invoices due and paid on as_of or on the due date or a day either side, order lines with unknown
costs and uncategorised products, customers since 29 February or since as_of (anniversaries).
TIERGRAPH_HYPOTHESIS_EXAMPLES raises the number of examples (default 60 per database).
"""
from __future__ import annotations

import math
import os
from datetime import date, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.models import Invoice, Opportunity, OrderLine, Product, Survey
from domain.records import load_all_records
from rules import nodes as n
from rules import to_sql
from rules.to_python import PyEvaluator, evaluate, evaluate_condition
from domain.record_flags import flag_names
from rules.tree import children, node_text
from rules.windows import bounds
AS_OFS = [date(2026, 3, 31), date(2026, 2, 28), date(2024, 2, 29), date(2026, 11, 23), date(2025, 12, 31)]
WINDOWS = [
    n.Window(7, "d"), n.Window(30, "d"), n.Window(90, "d"), n.Window(12, "w"), n.Window(1, "m"),
    n.Window(3, "m"), n.Window(12, "m"), n.Window(1, "y"), n.Window(90, "d", n.Window(90, "d")),
    n.Window(1, "m", n.Window(1, "m")),
]
NUM_FIELDS = {"order": ["amount", "margin", "cost_of_goods"], "complaint": ["cost"], "delivery": ["cost"],
              "interaction": ["cost"], "survey": ["score"],
              "opportunity": ["amount", "probability", "weighted_amount"],
              "invoice": ["amount", "outstanding", "days_late"],
              "order_line": ["amount", "margin", "cost", "quantity"]}
STR_FIELDS = {"complaint": ("category", ["billing", "quality"]), "interaction": ("kind", ["call", "win_back"]),
              "survey": ("channel", ["email", "phone"]), "opportunity": ("stage", ["proposal", "negotiation"]),
              "order_line": ("category", ["service", "goods"])}
FLAGS = {source: list(flag_names(source))
         for source in ("complaint", "delivery", "interaction", "survey", "opportunity", "invoice")}
KINDS = ["call", "win_back", "visit", "Win-Back", "WIN BACK", "winback ", "win_bacK", "win_back\u212a"]
SOURCES = ["order", "complaint", "delivery", "interaction", "survey", "opportunity", "invoice", "order_line"]
SURVEY_SCORES = {"nps": [0.0, 6.0, 6.5, 7.0, 8.0, 8.9, 9.0, 10.0], "csat": [1.0, 2.0, 2.5, 3.0, 3.9, 4.0, 5.0]}
NUMBERS = [0.0, 1.0, 2.0, 0.5, 3.0, 10.0, 100.0, -1.0, 0.25]
MONEY = [0.0, 0.25, 1.0, 2.5, 10.0, 100.0, 12000.0, -5.0]
REGIONS = [None, "east", "west", "East"]
ATTR_VALUES = ["10", "2.5", "abc", "", "-3", "+4", "1.", ".5", "1e3", 7, 3.5, 0, True, None, "east"]


def edge_dates(as_of: date) -> list[date]:
    """First and last day of every window, one day outside each, month ends, and as_of + 1."""
    out = {as_of, as_of + timedelta(days=1), as_of - timedelta(days=1)}
    for w in WINDOWS:
        b = bounds(w, as_of)
        out |= {b.start, b.start - timedelta(days=1), b.end, b.end + timedelta(days=1)}
    for y in (as_of.year - 1, as_of.year):
        out |= {date(y, 1, 31), date(y, 2, 28), date(y, 12, 31)}
    out.add(date(2024, 2, 29))
    return sorted(out)


def day(as_of: date):
    return st.one_of(
        st.sampled_from([as_of - timedelta(days=1), as_of, as_of + timedelta(days=1)]),
        st.sampled_from(edge_dates(as_of)),
        st.integers(-800, 3).map(lambda k: as_of + timedelta(days=k)),
    )


def near(d: date | None):
    """A record flag's date edges: the same day as `d` (as_of, a due or promised date), or one day either side."""
    if d is None:
        return st.none()
    return st.sampled_from([d - timedelta(days=1), d, d + timedelta(days=1)])


# ---------- rules ----------


@st.composite
def record_condition(draw, source: str, depth: int = 2):
    options = ["cmp_num"]
    if source in FLAGS:
        options += ["flag", "flag", "flag"]
    if source in STR_FIELDS:
        options.append("cmp_str")
    if depth > 0:
        options += ["and", "or", "not"]
    kind = draw(st.sampled_from(options))
    if kind == "flag":
        return n.RecordFlag(source, draw(st.sampled_from(FLAGS[source])))
    if kind == "cmp_num":
        return n.Compare(draw(st.sampled_from(["<", "<=", ">", ">=", "=", "!="])),
                         n.RecordField(source, draw(st.sampled_from(NUM_FIELDS[source]))),
                         n.Number(draw(st.sampled_from(NUMBERS))))
    if kind == "cmp_str":
        name, values = STR_FIELDS[source]
        return n.Compare(draw(st.sampled_from(["=", "!="])), n.RecordField(source, name),
                         n.String(draw(st.sampled_from(values))))
    if kind == "not":
        return n.Not(draw(record_condition(source, depth - 1)))
    cls = n.And if kind == "and" else n.Or
    return cls(draw(record_condition(source, depth - 1)), draw(record_condition(source, depth - 1)))


@st.composite
def aggregate(draw):
    source = draw(st.sampled_from(SOURCES))
    func = draw(st.sampled_from(["sum", "count", "avg", "min", "max"]))
    fld = None if func == "count" else n.RecordField(source, draw(st.sampled_from(NUM_FIELDS[source])))
    window = draw(st.one_of(st.none(), st.sampled_from(WINDOWS)))
    where = draw(st.one_of(st.none(), record_condition(source)))
    return n.Aggregate(func, source, fld, window, where)


@st.composite
def num_expr(draw, metrics: list[str], depth: int = 2):
    options = ["agg", "agg", "num"]
    if metrics:
        options += ["ref", "ref"]
    options += ["days", "attr", "customer_num", "anniversary"]
    if depth > 0:
        options += ["arith", "arith", "arith", "neg"]
    kind = draw(st.sampled_from(options))
    if kind == "agg":
        return draw(aggregate())
    if kind == "num":
        return n.Number(draw(st.sampled_from(NUMBERS)))
    if kind == "ref":
        return n.MetricRef(draw(st.sampled_from(metrics)))
    if kind == "days":
        source = draw(st.sampled_from(SOURCES))
        return n.DaysSince(source, draw(st.one_of(st.none(), record_condition(source, 1))))
    if kind == "attr":
        return n.CustomerField("score", attribute=True)
    if kind == "customer_num":
        return n.CustomerField(draw(st.sampled_from(["credit_limit", "payment_terms_days"])))
    if kind == "anniversary":
        return n.DaysUntilAnniversary()
    if kind == "neg":
        return n.Negate(draw(num_expr(metrics, depth - 1)))
    return n.Arith(draw(st.sampled_from(["+", "-", "*", "/", "/"])), draw(num_expr(metrics, depth - 1)),
                   draw(num_expr(metrics, depth - 1)))


@st.composite
def bool_expr(draw, metrics: list[str], depth: int = 2):
    options = ["cmp", "cmp", "rank", "rank", "norecord", "flag", "field", "attr", "inlist", "customer_for"]
    if depth > 0:
        options += ["and", "or", "not"]
    kind = draw(st.sampled_from(options))
    num = num_expr(metrics, 1)
    if kind == "cmp":
        return n.Compare(draw(st.sampled_from(["<", "<=", ">", ">=", "=", "!="])), draw(num), draw(num))
    if kind == "rank":
        percent = draw(st.booleans())
        amount = draw(st.sampled_from([10.0, 20.0, 50.0, 100.0, 33.0, 0.0])) if percent else \
            draw(st.sampled_from([0.0, 1.0, 2.0, 3.0]))
        return n.Rank(draw(num), draw(st.sampled_from(["top", "bottom"])), amount, percent)
    if kind == "norecord":
        source = draw(st.sampled_from(SOURCES))
        return n.NoRecord(source, draw(st.one_of(st.none(), st.sampled_from(WINDOWS))),
                          draw(st.one_of(st.none(), record_condition(source, 1))))
    if kind == "flag":
        return n.Flag(draw(st.sampled_from(["seasonal", "blocked", "consent"])))
    if kind == "customer_for":
        return n.CustomerFor(draw(st.sampled_from([n.Window(1, "y"), n.Window(5, "y"), n.Window(30, "d"),
                                                   n.Window(6, "m")])))
    if kind == "field":
        name = draw(st.sampled_from(["region", "credit_grade"]))
        return n.Compare(draw(st.sampled_from(["=", "!=", "<", ">="])), n.CustomerField(name),
                         n.String(draw(st.sampled_from(["east", "West", "east ", "A"]))))
    if kind == "attr":
        other = draw(st.one_of(st.sampled_from(NUMBERS).map(n.Number),
                               st.sampled_from(["10", "abc", "east", ""]).map(n.String)))
        return n.Compare(draw(st.sampled_from(["=", "!=", "<", ">"])), n.CustomerField("score", attribute=True),
                         other)
    if kind == "inlist":
        operand = draw(st.sampled_from([n.CustomerField("region"), n.CustomerField("score", attribute=True)]))
        values = draw(st.lists(st.one_of(st.sampled_from(["east", "west", "10"]).map(n.String),
                                         st.sampled_from([10.0, 7.0, 2.5]).map(n.Number)), min_size=1, max_size=3))
        if type(operand) is n.CustomerField and not operand.attribute:
            values = [v for v in values if type(v) is n.String] or [n.String("east")]
        return n.InList(operand, tuple(values))
    if kind == "not":
        return n.Not(draw(bool_expr(metrics, depth - 1)))
    cls = n.And if kind == "and" else n.Or
    return cls(draw(bool_expr(metrics, depth - 1)), draw(bool_expr(metrics, depth - 1)))


@st.composite
def rule_sets(draw):
    metrics: list[n.Metric] = []
    line = 1
    for i in range(draw(st.integers(0, 4))):
        names = [m.name for m in metrics]
        expr = draw(num_expr(names))
        metrics.append(n.Metric(f"m{i}", expr, n.Pos(line, 1), f"metric m{i} = {node_text(expr)}"))
        line += 1
    names = [m.name for m in metrics]

    def rules(kind: str, labels: list[str], otherwise: bool, lo: int, hi: int):
        nonlocal line
        out = []
        for _ in range(draw(st.integers(lo, hi))):
            cond = draw(bool_expr(names))
            label = draw(st.sampled_from(labels))
            out.append(n.Rule(kind, label, cond, n.Pos(line, 1), f"{kind} {label} if {node_text(cond)}"))
            line += 1
        if otherwise:
            out.append(n.Rule(kind, labels[-1], None, n.Pos(line, 1), f"{kind} {labels[-1]} otherwise"))
            line += 1
        return tuple(out)

    tiers = rules("tier", ["key", "important", "maintain"], True, 0, 3)
    statuses = rules("status", ["prospect", "lost", "at_risk", "active"], True, 0, 3)
    tags = rules("tag", ["hot", "negative", "hot2"], False, 0, 3)
    return n.RuleSet(tuple(metrics), tiers, statuses, tags)


# ---------- data ----------


@st.composite
def customer_data(draw, as_of: date):
    """Rows for customers, orders, complaints, deliveries and interactions (ids assigned here)."""
    when = day(as_of)
    money = st.sampled_from(MONEY)
    customers, orders, complaints, deliveries, interactions = [], [], [], [], []
    surveys, opportunities, invoices, order_lines = [], [], [], []
    n_customers = draw(st.integers(1, 8))
    oid = 1
    for cid in range(1, n_customers + 1):
        attrs = {}
        if draw(st.booleans()):
            attrs["score"] = draw(st.sampled_from(ATTR_VALUES))
        customers.append(dict(
            id=cid, external_id=f"c{cid}", name=f"Customer {cid}",
            region=draw(st.sampled_from(REGIONS)), industry=None, size=None,
            seasonal=draw(st.booleans()),
            blocked_from=draw(st.sampled_from([None, None, None, as_of, as_of + timedelta(days=1),
                                               as_of - timedelta(days=30)])),
            created_at=(created := draw(st.sampled_from([date(2020, 1, 1), date(2020, 1, 1), as_of,
                                                          as_of + timedelta(days=1), date(2020, 2, 29),
                                                          as_of - timedelta(days=365)]))),
            attributes=attrs,
            credit_grade=draw(st.sampled_from([None, "A", "B"])),
            credit_limit=draw(st.sampled_from([None, 0.0, 1000.0, 50.0])),
            payment_terms_days=draw(st.sampled_from([None, 0, 30, 60])),
            consent=draw(st.booleans()),
        ))
        my_orders = []
        # some customers share their whole order history with the previous one: ties in every value
        if cid > 1 and draw(st.integers(0, 4)) == 0:
            template = [o for o in orders if o["customer_id"] == cid - 1]
        else:
            template = [dict(ordered_at=draw(when), amount=draw(money),
                             margin=draw(st.one_of(st.none(), money)))
                        for _ in range(draw(st.integers(0, 5)))]
        for t in template:
            cost = None if t["margin"] is None else t["amount"] - t["margin"]
            o = dict(id=oid, external_id=f"o{oid}", customer_id=cid, ordered_at=t["ordered_at"],
                     amount=t["amount"], cost_of_goods=cost, margin=t["margin"], line_count=1)
            orders.append(o)
            my_orders.append(o)
            for line_no in range(1, draw(st.integers(0, 2)) + 1):
                order_lines.append(dict(
                    id=len(order_lines) + 1, order_id=oid, customer_id=cid, line_no=line_no,
                    product_id=draw(st.sampled_from([1, 2, 3])), quantity=draw(st.sampled_from([1.0, 2.0, 0.5, -1.0])),
                    unit_price=draw(money), unit_cost=draw(st.one_of(st.none(), money)), is_return=False))
            oid += 1
        for k in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["nps", "csat"]))
            surveys.append(dict(
                id=len(surveys) + 1, external_id=f"s{len(surveys) + 1}", customer_id=cid, answered_at=draw(when),
                kind=kind, score=draw(st.sampled_from(SURVEY_SCORES[kind])),
                channel=draw(st.sampled_from([None, "email", "phone"])), comment=None))
        for k in range(draw(st.integers(0, 2))):
            closed = draw(st.one_of(st.none(), when, near(as_of)))
            opportunities.append(dict(
                id=len(opportunities) + 1, external_id=f"p{len(opportunities) + 1}", customer_id=cid,
                opened_at=draw(when), stage=draw(st.sampled_from(["proposal", "negotiation"])),
                amount=draw(money), probability=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
                expected_close_on=draw(st.one_of(st.none(), when, near(as_of))), closed_at=closed,
                outcome=None if closed is None else draw(st.sampled_from(["won", "lost"]))))
        for k in range(draw(st.integers(0, 3))):
            issued = draw(when)
            due = draw(st.one_of(near(as_of), st.just(issued + timedelta(days=30)), near(issued)))
            invoices.append(dict(
                id=len(invoices) + 1, external_id=f"v{len(invoices) + 1}", customer_id=cid, issued_at=issued,
                due_at=due, amount=draw(money), paid_at=draw(st.one_of(st.none(), when, near(as_of), near(due)))))
        for k in range(draw(st.integers(0, 3))):
            complaints.append(dict(
                id=len(complaints) + 1, external_id=f"k{len(complaints) + 1}", customer_id=cid,
                opened_at=draw(when), due_at=(due := draw(st.one_of(st.none(), when, near(as_of)))),
                resolved_at=draw(st.one_of(st.none(), when, near(as_of), near(due))),
                category=draw(st.sampled_from([None, "billing", "quality"])), cost=draw(money)))
        if my_orders:
            for k in range(draw(st.integers(0, 3))):
                deliveries.append(dict(
                    id=len(deliveries) + 1, external_id=f"d{len(deliveries) + 1}", customer_id=cid,
                    order_id=draw(st.sampled_from(my_orders))["id"], promised_at=(promised := draw(when)),
                    delivered_at=draw(st.one_of(st.none(), when, near(as_of), near(promised))),
                    cost=draw(st.one_of(st.none(), money))))
        for k in range(draw(st.integers(0, 3))):
            interactions.append(dict(
                id=len(interactions) + 1, external_id=f"i{len(interactions) + 1}", customer_id=cid,
                occurred_at=draw(when), kind=draw(st.sampled_from(KINDS)),
                cost=draw(money)))
    return dict(customers=customers, orders=orders, complaints=complaints, deliveries=deliveries,
                interactions=interactions, surveys=surveys, opportunities=opportunities, invoices=invoices,
                order_lines=order_lines)


# ---------- the test ----------

DELETE_ORDER = ["tier_changes", "customer_evaluations", "evaluation_runs", "deliveries", "complaints",
                "interactions", "surveys", "opportunities", "invoices", "order_lines", "orders", "products",
                "customers"]
PRODUCTS = [dict(id=1, sku="svc", name="Service", category="service"),
            dict(id=2, sku="box", name="Box", category="goods"), dict(id=3, sku="misc", name="Misc", category=None)]
EXAMPLES = int(os.environ.get("TIERGRAPH_HYPOTHESIS_EXAMPLES", "60"))


def load(engine, data) -> None:
    with engine.begin() as conn:
        for t in DELETE_ORDER:
            conn.execute(sa.text(f"DELETE FROM {t}"))
        conn.execute(Product.__table__.insert(), PRODUCTS)
        for name, table in (("customers", to_sql.customers), ("orders", to_sql.orders),
                            ("complaints", to_sql.complaints), ("deliveries", to_sql.deliveries),
                            ("interactions", to_sql.interactions), ("surveys", Survey.__table__),
                            ("opportunities", Opportunity.__table__), ("invoices", Invoice.__table__),
                            ("order_lines", OrderLine.__table__)):
            if data.get(name):
                conn.execute(table.insert(), data[name])


def same_number(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def brute_force_rank(values: dict[int, float | None], node: n.Rank) -> dict[int, bool | None]:
    """The rank definition, literally: count the customers at or above (below) each one."""
    known = [v for v in values.values() if v is not None]
    out: dict[int, bool | None] = {}
    for cid, x in values.items():
        if x is None:
            out[cid] = None
            continue
        at_or_beyond = sum(1 for v in known if (v >= x if node.direction == "top" else v <= x))
        limit_ok = at_or_beyond * 100 <= node.amount * len(known) if node.percent else at_or_beyond <= node.amount
        out[cid] = limit_ok
    return out


def probe_ruleset(ruleset: n.RuleSet, relationship: bool = True) -> n.RuleSet:
    """Every numeric sub-expression as a metric and every boolean sub-expression as two tags (true / false):
    agreement on these checks each node, not only the first rule that fires."""
    nums, bools = [], []
    exprs = [m.expr for m in ruleset.metrics]
    exprs += [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition is not None]

    def visit(node, in_record: bool) -> None:
        t = type(node)
        if t in (n.Aggregate, n.DaysSince, n.NoRecord):
            if not in_record:
                (bools if t is n.NoRecord else nums).append(node)
            return  # its `where` is checked through the aggregate
        if not in_record:
            if t in (n.Arith, n.Negate) and node not in nums:
                nums.append(node)
            if t in (n.Compare, n.InList, n.Rank, n.Flag, n.And, n.Or, n.Not) and node not in bools:
                bools.append(node)
        for child in children(node):
            visit(child, in_record)

    for e in exprs:
        visit(e, False)
    # record flags and windows on every example, whatever the random rules use
    for source, flags in FLAGS.items():
        for flag in flags:
            nums.append(n.Aggregate("count", source, None, None, n.RecordFlag(source, flag)))
    for w in WINDOWS:
        nums.append(n.Aggregate("sum", "order", n.RecordField("order", "margin"), w))
    nums.append(n.DaysSince("interaction"))
    if relationship:  # the relationship's age moves every day: the dated back end refuses it (DailyCondition)
        nums.append(n.DaysUntilAnniversary())
        bools.append(n.CustomerFor(n.Window(1, "y")))
    for source in ("survey", "opportunity", "invoice", "order_line"):
        for fld in NUM_FIELDS[source]:
            nums.append(n.Aggregate("sum", source, n.RecordField(source, fld), None))
    metrics = list(ruleset.metrics)
    for i, e in enumerate(dict.fromkeys(nums)):
        metrics.append(n.Metric(f"probe{i}", e, n.Pos(900 + i, 1), node_text(e)))
    tags = []
    for i, b in enumerate(dict.fromkeys(bools)):
        tags.append(n.Rule("tag", f"true{i}", b, n.Pos(1000 + i, 1), node_text(b)))
        tags.append(n.Rule("tag", f"false{i}", n.Not(b), n.Pos(2000 + i, 1), node_text(b)))
    return n.RuleSet(tuple(metrics), ruleset.tiers, ruleset.statuses, tuple(tags))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_sql_and_python_agree(engine, data):
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    ruleset = probe_ruleset(data.draw(rule_sets(), label="rules"))
    rows = data.draw(customer_data(as_of), label="data")
    load(engine, rows)

    compiled = to_sql.compile_ruleset(ruleset, as_of)
    with engine.connect() as conn:
        result = conn.execute(compiled.query).fetchall()
    cutoffs = compiled.cutoffs(result)
    records = load_all_records(engine)

    expected_ids = sorted(c["id"] for c in rows["customers"] if c["created_at"] <= as_of)
    assert [r.customer_id for r in result] == expected_ids

    for row in result:
        sql = compiled.decode(row)
        py = evaluate(ruleset, records[sql["customer_id"]], as_of, cutoffs)
        assert (sql["tier"], sql["tier_line"]) == (py.tier, py.tier_line), sql["customer_id"]
        assert (sql["status"], sql["status_line"]) == (py.status, py.status_line), sql["customer_id"]
        assert sql["tags"] == py.tags, sql["customer_id"]
        for name, value in py.metrics.items():
            assert same_number(sql["metrics"][name], value), (sql["customer_id"], name, sql["metrics"][name], value)

    # the SQL window functions implement the rank definition literally
    for key, node, vcol, icol in compiled.ranks:
        values = {}
        for row in result:
            cid = row._mapping["customer_id"]
            values[cid] = PyEvaluator(ruleset, records[cid], as_of, cutoffs).num(node.operand)
        expected = brute_force_rank(values, node)
        got = {row._mapping["customer_id"]: (None if row._mapping[icol] is None else bool(row._mapping[icol]))
               for row in result}
        assert got == expected, key

    # cut-offs straight from SQL agree with the ones taken from the full result
    query, ranks = to_sql.compile_cutoffs(ruleset, as_of)
    if ranks:
        with engine.connect() as conn:
            one = conn.execute(query).one()
        for i, (key, _node) in enumerate(ranks):
            assert same_number(one[i], cutoffs[key]), key

    # an ad-hoc filter selects exactly the customers the Python path finds true
    conditions = [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition]
    if conditions:
        cond = data.draw(st.sampled_from(conditions), label="filter")
        with engine.connect() as conn:
            ids = [r[0] for r in conn.execute(to_sql.compile_filter(cond, ruleset, as_of))]
        want = [cid for cid in expected_ids
                if evaluate_condition(cond, ruleset, records[cid], as_of, cutoffs) is True]
        assert ids == want
