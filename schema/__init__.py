"""The GraphQL API, assembled from one module per area."""
from __future__ import annotations

from functools import cache

import strawberry

from schema.errors import error_masking
from schema.query import Query
from schema.events import EventSubscriptions
from schema.rulesets import RuleSetMutations
from schema.webhooks import WebhookMutations


@strawberry.type
class Mutation(RuleSetMutations, WebhookMutations):
    pass


@strawberry.type
class Subscription(EventSubscriptions):
    pass


@cache
def build_schema() -> strawberry.Schema:
    """Built once per process: strawberry binds field resolvers to the type classes when it builds."""
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=[error_masking])
