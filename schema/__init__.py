"""The GraphQL API, assembled from one module per area."""
from __future__ import annotations

from functools import cache

import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from schema.errors import error_masking
from schema.query import Query
from schema.events import EventSubscriptions
from schema.loss_marks import LossMarkMutations
from schema.privacy import PrivacyMutations
from schema.rulesets import RuleSetMutations
from schema.webhooks import WebhookMutations
from schema.writes import WriteMutations


@strawberry.type
class Mutation(RuleSetMutations, WebhookMutations, WriteMutations, LossMarkMutations, PrivacyMutations):
    pass


@strawberry.type
class Subscription(EventSubscriptions):
    pass


MAX_DEPTH = 12
MAX_ALIASES = 30


@cache
def build_schema() -> strawberry.Schema:
    """Built once per process: strawberry binds field resolvers to the type classes when it builds."""
    # depth and alias limits keep one request from fanning out into unbounded work
    extensions = [error_masking, lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
                  lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES)]
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)
