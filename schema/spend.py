"""A customer's spend per product category and per product over GraphQL (domain.spend)."""
from __future__ import annotations

from typing import Optional

import strawberry

from domain import spend

SHARE_OF_WALLET = ("revenue / the customer's estimated wallet for the category: its custom attribute "
                   "`wallet.<category>` (e.g. imported as column `attr.wallet.tools`) when that is a positive number "
                   "or plain decimal text; null otherwise, and for lines without a category.")


@strawberry.type(description="What a customer spent in one product category in a window.")
class CategorySpend:
    category: Optional[str] = strawberry.field(description="Null: products without a category.")
    revenue: float = strawberry.field(description="Order line amounts (quantity x unit price; returns subtract).")
    margin: Optional[float] = strawberry.field(description="Null when any of those lines has an unknown cost.")
    orders: int
    share: Optional[float] = strawberry.field(description="Of the customer's revenue in the window (0-1).")
    share_of_wallet: Optional[float] = strawberry.field(description=SHARE_OF_WALLET)

    @classmethod
    def of(cls, s: spend.Spend, attributes: Optional[dict]) -> "CategorySpend":
        return cls(category=s.category, revenue=s.revenue, margin=s.margin, orders=s.orders, share=s.share,
                   share_of_wallet=spend.share_of_wallet(attributes, s))


@strawberry.type(description="What a customer spent on one product in a window.")
class ProductSpend(CategorySpend):
    sku: str
    name: str

    @classmethod
    def of(cls, s: spend.Spend, attributes: Optional[dict]) -> "ProductSpend":
        return cls(sku=s.sku, name=s.name, category=s.category, revenue=s.revenue, margin=s.margin, orders=s.orders,
                   share=s.share, share_of_wallet=spend.share_of_wallet(attributes, s))
