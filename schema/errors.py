"""Errors a client can act on carry a stable code in `extensions`; every other error is masked."""
from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors


class UserError(Exception):
    """A problem with the request itself (bad argument, unknown id, invalid rule): shown to the client."""

    def __init__(self, code: str, message: str, **details: Any):
        super().__init__(message)
        self.code = code
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.details}


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:  # GraphQL validation / syntax errors: about the query text, safe to show
        return False
    return not isinstance(original, UserError)


def error_masking() -> MaskErrors:
    return MaskErrors(should_mask_error=_should_mask, error_message="Internal server error.")
