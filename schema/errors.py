"""Errors a client can act on carry a stable code in `extensions`; every other error is masked."""
from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.relay.types import GlobalIDValueError, InvalidGlobalIDError


class UserError(Exception):
    """A problem with the request itself (bad argument, unknown id, invalid rule): shown to the client."""

    def __init__(self, code: str, message: str, **details: Any):
        super().__init__(message)
        self.code = code
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.details}


def _variable_error(error: GraphQLError) -> bool:
    """A variable whose value does not fit its declared type (graphql-core words these errors this way)."""
    return not error.path and error.message.startswith("Variable '$")


def _client_error(error: GraphQLError) -> GraphQLError | None:
    """The error shown to the client, with its code; None when it must be masked."""
    original = error.original_error
    if isinstance(original, UserError):
        return error
    if _variable_error(error):
        return _with_code(error, "BAD_VARIABLE")
    if isinstance(original, (InvalidGlobalIDError, GlobalIDValueError)):
        return _with_code(error, "BAD_ID")
    if original is None:  # GraphQL validation / syntax errors: about the query text, safe to show
        return error if (error.extensions or {}).get("code") else _with_code(error, "BAD_QUERY")
    return None


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    return GraphQLError(error.message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, original_error=None, extensions={**(error.extensions or {}), "code": code})


class ClientErrors(MaskErrors):
    """Client mistakes keep their message and get a code; every other error is masked."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [_client_error(e) or self.anonymise_error(e) for e in errors]


def error_masking() -> MaskErrors:
    return ClientErrors(error_message="Internal server error.")
