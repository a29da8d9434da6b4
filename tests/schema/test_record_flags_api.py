"""Complaint.open / overdue and Delivery.late in GraphQL are the record flags (domain.record_flags) on asOf, by
default on the data's now (the latest evaluation's as_of), not on the calendar's today."""
from __future__ import annotations

from datetime import date

from domain.evaluation import run_batch
from domain.models import Complaint, Customer, Delivery, Interaction, Order
from rules.compiler import compile_rules

QUERY = """query($asOf: Date) { customerByExternalId(externalId: "FLAGS") {
  complaints { edges { node { externalId open(asOf: $asOf) overdue(asOf: $asOf) } } }
  deliveries { edges { node { externalId late(asOf: $asOf) } } }
  interactions { edges { node { kind winBack } } } } }"""


def _flags(client, as_of=None):
    data = client.data(QUERY, asOf=as_of)["customerByExternalId"]
    complaints = {e["node"]["externalId"]: (e["node"]["open"], e["node"]["overdue"])
                  for e in data["complaints"]["edges"]}
    deliveries = {e["node"]["externalId"]: e["node"]["late"] for e in data["deliveries"]["edges"]}
    assert {e["node"]["kind"]: e["node"]["winBack"] for e in data["interactions"]["edges"]} == \
        {"Win-Back": True, "call": False}
    return complaints, deliveries


def test_record_flags_follow_as_of(client, graph_engine):
    with graph_engine.begin() as conn:
        cid = conn.execute(Customer.__table__.insert().values(
            external_id="FLAGS", name="Flags", seasonal=False, created_at=date(2020, 1, 1), attributes={})
            .returning(Customer.__table__.c.id)).scalar_one()
        oid = conn.execute(Order.__table__.insert().values(
            external_id="FLAGS-O", customer_id=cid, ordered_at=date(2021, 1, 1), amount=1.0, line_count=1)
            .returning(Order.__table__.c.id)).scalar_one()
        conn.execute(Complaint.__table__.insert(), [
            # due 2021-02-01, resolved late on 2021-03-01
            dict(external_id="K-LATE", customer_id=cid, opened_at=date(2021, 1, 10), due_at=date(2021, 2, 1),
                 resolved_at=date(2021, 3, 1), cost=0.0)])
        conn.execute(Delivery.__table__.insert(), [
            dict(external_id="D-LATE", customer_id=cid, order_id=oid, promised_at=date(2021, 1, 5),
                 delivered_at=date(2021, 1, 20))])
        conn.execute(Interaction.__table__.insert(), [
            dict(external_id=f"I-{kind}", customer_id=cid, occurred_at=date(2021, 1, 2), kind=kind, cost=0.0)
            for kind in ("Win-Back", "call")])
    assert _flags(client, "2021-01-20") == ({"K-LATE": (True, False)}, {"D-LATE": True})
    assert _flags(client, "2021-02-15") == ({"K-LATE": (True, True)}, {"D-LATE": True})  # pending
    assert _flags(client, "2021-03-01") == ({"K-LATE": (False, True)}, {"D-LATE": True})  # resolved late
    assert _flags(client, "2021-01-05") == ({"K-LATE": (True, False)}, {"D-LATE": False})  # promised today
    # without asOf: the data's now, here the stored evaluation of 2021-02-15 (the calendar's today would say
    # resolved; before the fix `open` ignored the date and `overdue` used today)
    run_batch(graph_engine, compile_rules("tier any otherwise\n"), date(2021, 2, 15))
    assert _flags(client) == ({"K-LATE": (True, True)}, {"D-LATE": True})
