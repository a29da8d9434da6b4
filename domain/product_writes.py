"""Writing one product through the API: its name, unit cost, seasonal flag and category.

Like every write (domain.writes), validated with the import's per-column rules (products.csv) and stored in one
writer transaction. The category is read by the rule language's order lines (`order_line where category =
"service"`), so a category change re-evaluates every customer who bought the product, in the same transaction;
a unit cost change does not, because each stored order line keeps the cost it was recorded with.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain import evaluation_state as es
from domain import import_rows as rows_
from domain.models import OrderLine, Product
from domain.writes import BadInput, FieldProblem, Rules, _check, _parse, _plain, _reevaluate, _required, _same

products_t = Product.__table__
lines_t = OrderLine.__table__
_FIELDS = ("name", "unit_cost", "seasonal", "category")


@dataclass
class ProductWritten:
    record: Any  # the stored row
    changed: bool  # False: the stored values were given again, nothing was written
    reevaluated: int = 0  # customers re-evaluated because the category changed
    states: list[es.NewState] = field(default_factory=list)


def upsert_product(engine: Engine, values: dict[str, Any], *, rules: Rules = None) -> ProductWritten:
    """Create a product or change the fields given (values: sku and any of name, unit_cost, seasonal, category).
    A key left out keeps its stored value; None clears it (not the name; seasonal None is not seasonal). A new
    product needs a name. Giving the stored values again is a no-op."""
    sku = values.get("sku")
    given = {c: values[c] for c in _FIELDS if c in values}
    problems = _required({"sku": sku}, ("sku",))
    if "name" in given and given["name"] is None:
        problems.append(FieldProblem(("name",), "'name' cannot be cleared"))
    _check(problems)
    row, problems = _parse("products.csv", rows_.product_row, {"sku": sku, "name": "-", **given}, _plain)
    _check(problems)
    with es.writer_transaction(engine) as conn:
        stored = conn.execute(sa.select(products_t).where(products_t.c.sku == sku)).first()
        changes = {c: getattr(row, c) for c in given}
        if stored is None:
            if given.get("name") is None:
                raise BadInput([FieldProblem(("name",), "a new product needs a name")])
            conn.execute(products_t.insert().values(sku=sku, **changes))
            return ProductWritten(_stored(conn, sku), True)
        changes = {k: v for k, v in changes.items() if not _same(stored._mapping[k], v)}
        if not changes:
            return ProductWritten(stored, False)
        conn.execute(products_t.update().where(products_t.c.id == stored.id).values(changes))
        buyers: set[int] = set()
        if "category" in changes:  # rules over order lines read it
            buyers = set(conn.execute(sa.select(lines_t.c.customer_id).where(lines_t.c.product_id == stored.id)
                                      .distinct()).scalars())
        states = _reevaluate(conn, buyers, "product", sku, rules) if buyers else []
        return ProductWritten(_stored(conn, sku), True, len(buyers), states)


def _stored(conn: Any, sku: str) -> Any:
    return conn.execute(sa.select(products_t).where(products_t.c.sku == sku)).one()
