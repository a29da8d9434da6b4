"""Who may call what, declared on each root field: `permission_classes=[Public]` or `[IsAdmin]`.

Every root field names its role (tests/schema/test_permissions.py walks the schema and fails on a field that does
not); nested fields are reached only through a root field and so share its role.
"""
from __future__ import annotations

import hmac
from typing import Annotated, Any, Optional

import strawberry

from strawberry.permission import BasePermission
from strawberry.types import Info

from schema.errors import UserError


class Public(BasePermission):
    """Anyone who may call the API at all (the API token, when set, is checked before GraphQL runs)."""

    role = "public"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return True


class IsAdmin(BasePermission):
    """Needs `Authorization: Bearer <TIERGRAPH_ADMIN_TOKEN>`; without a configured token admin calls are off."""

    role = "admin"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        token: Optional[str] = getattr(context.settings, "admin_token", None)
        if not token:
            raise UserError("FORBIDDEN", "admin calls are disabled on this server: set TIERGRAPH_ADMIN_TOKEN")
        given = bearer(context.authorization())
        if not given:
            raise UserError("UNAUTHENTICATED", "this call needs an admin token: 'Authorization: Bearer <token>'")
        if not token_matches(given, token):
            raise UserError("FORBIDDEN", "the admin token is not valid")
        return True


ROLES = (Public, IsAdmin)


def role_of(field: Any) -> Optional[str]:
    """The role a strawberry field declares, or None when it declares none (or more than one)."""
    roles = {p.role for p in getattr(field, "permission_classes", []) or [] if p in ROLES}
    return roles.pop() if len(roles) == 1 else None


def bearer(header: Optional[str]) -> str:
    """The token of an `Authorization: Bearer <token>` value, or ''."""
    header = header or ""
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def token_matches(given: str, *tokens: Optional[str]) -> bool:
    return bool(given) and any(t and hmac.compare_digest(given.encode(), t.encode()) for t in tokens)


# strawberry's PermissionExtension takes the parent object as its `source` parameter, so a field argument named
# `source` collides with it: rule-text arguments keep the name `source` in the API but not in Python.
RuleText = Annotated[str, strawberry.argument(name="source", description="The rule text.")]
