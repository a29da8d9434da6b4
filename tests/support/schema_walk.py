"""Walking the built schema: every field of every object type reachable from the roots, and a minimal call."""
from __future__ import annotations

from datetime import date, datetime
from typing import Iterator

from graphql import (GraphQLEnumType, GraphQLField, GraphQLInputObjectType, GraphQLList, GraphQLNonNull,
                     GraphQLObjectType, GraphQLScalarType, GraphQLSchema, get_named_type, is_composite_type,
                     is_required_input_field, print_ast)
from graphql.utilities import ast_from_value

from schema import build_schema
from schema.permissions import role_of

ROOTS = ("Query", "Mutation", "Subscription")


def graphql_schema() -> GraphQLSchema:
    return build_schema()._schema


def walk(schema: GraphQLSchema) -> Iterator[tuple[str, str, GraphQLField, str | None]]:
    """(type, field name, field, role) for every field of every object type reachable from the roots. A root
    field's role is the one it declares (None: undeclared); a nested field is reached only through root fields,
    so its role is the weakest of theirs ('public via 12 root fields' / 'admin via Query.job')."""
    reached: dict[str, set[tuple[str, str | None]]] = {}
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if root is None:
            continue
        for name, field in root.fields.items():
            role = role_of(field.extensions["strawberry-definition"])
            yield root.name, name, field, role
            _reach(get_named_type(field.type), (f"{root.name}.{name}", role), reached)
    for type_name in sorted(reached):
        gtype = schema.type_map[type_name]
        via = reached[type_name]
        roles = {role for _, role in via}
        weakest = "public" if "public" in roles else "admin" if roles == {"admin"} else None
        origin = next(iter(via))[0] if len(via) == 1 else f"{len(via)} root fields"
        for name, field in gtype.fields.items():
            yield type_name, name, field, f"{weakest} via {origin}"


def _reach(gtype, root: tuple[str, str | None], reached: dict) -> None:
    if not isinstance(gtype, GraphQLObjectType) or root in reached.get(gtype.name, set()):
        return
    reached.setdefault(gtype.name, set()).add(root)
    for field in gtype.fields.values():
        _reach(get_named_type(field.type), root, reached)


def _sample(gtype):
    """A value of an argument's type that parses, for calling a field without caring about the answer."""
    if isinstance(gtype, GraphQLNonNull):
        return _sample(gtype.of_type)
    if isinstance(gtype, GraphQLList):
        return []
    if isinstance(gtype, GraphQLEnumType):
        return next(iter(gtype.values.values())).value
    if isinstance(gtype, GraphQLInputObjectType):  # its required fields (e.g. a write's input)
        return {n: _sample(f.type) for n, f in gtype.fields.items() if is_required_input_field(f)}
    if isinstance(gtype, GraphQLScalarType):
        return {"Int": 1, "Float": 1.0, "String": "x", "Boolean": False, "ID": "x", "Date": date(2024, 6, 30),
                "DateTime": datetime(2024, 6, 30), "GlobalID": "Q3VzdG9tZXI6QzAwMQ=="}[gtype.name]
    raise AssertionError(f"no sample for {gtype}")


class Variable(str):
    """An argument value written as a variable reference: Variable("$v")."""


def call_of(root: str, name: str, field: GraphQLField, **given) -> str:
    """A document calling the field with its required arguments (and `given` ones) and the smallest selection."""
    values = {n: _sample(a.type) for n, a in field.args.items() if isinstance(a.type, GraphQLNonNull)} | given
    args = [f"{n}: {v if isinstance(v, Variable) else print_ast(ast_from_value(v, field.args[n].type))}"
            for n, v in values.items()]
    arguments = f"({', '.join(args)})" if args else ""
    selection = " { __typename }" if is_composite_type(get_named_type(field.type)) else ""
    return f"{root.lower()} {{ {name}{arguments}{selection} }}"
