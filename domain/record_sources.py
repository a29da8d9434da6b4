"""The record sources the rule language reads: one selectable per source, each with `customer_id`, `id` and the
source's record date (domain.record_flags.RECORD_DATE), so the batch groups every source by customer id alone.

`order_line` is not a table of its own: it is each order line with its order's date and its product's sku and
category, and the line's amount (quantity x unit price), cost and margin (unknown when the unit cost is). The
join to the order carries the customer id too, so on a database distributed by customer it stays on one shard;
products are a small reference table.
"""
from __future__ import annotations

import sqlalchemy as sa

from domain.models import Complaint, Delivery, Interaction, Invoice, Opportunity, Order, OrderLine, Product, Survey

_lines, _orders, _products = OrderLine.__table__, Order.__table__, Product.__table__

ORDER_LINE_RECORDS = (
    sa.select(_lines.c.id, _lines.c.customer_id, _lines.c.order_id, _orders.c.ordered_at,
              _products.c.sku.label("product"), _products.c.category, _lines.c.quantity,
              (_lines.c.quantity * _lines.c.unit_price).label("amount"),
              (_lines.c.quantity * _lines.c.unit_cost).label("cost"),
              (_lines.c.quantity * (_lines.c.unit_price - _lines.c.unit_cost)).label("margin"))
    .select_from(_lines
                 .join(_orders, sa.and_(_orders.c.id == _lines.c.order_id,
                                        _orders.c.customer_id == _lines.c.customer_id))
                 .join(_products, _products.c.id == _lines.c.product_id))
    .subquery("order_line_records")
)

TABLES: dict[str, sa.FromClause] = {
    "order": Order.__table__, "complaint": Complaint.__table__, "delivery": Delivery.__table__,
    "interaction": Interaction.__table__, "survey": Survey.__table__, "opportunity": Opportunity.__table__,
    "invoice": Invoice.__table__, "order_line": ORDER_LINE_RECORDS,
}
# the attribute of rules.to_python.CustomerRecords that holds each source's records
LIST_OF: dict[str, str] = {"order": "orders", "complaint": "complaints", "delivery": "deliveries",
                           "interaction": "interactions", "survey": "surveys", "opportunity": "opportunities",
                           "invoice": "invoices", "order_line": "order_lines"}
