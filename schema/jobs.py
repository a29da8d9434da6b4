"""Background jobs (publish, rollback): state, progress and result, for admins to follow."""
from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Optional

import strawberry
from strawberry.types import Info

from domain import jobs
from schema.context import ctx
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.permissions import IsAdmin


@strawberry.enum
class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.type(description="Whole-base work started by publishRules or rollbackRules.")
class Job:
    id: int
    kind: str = strawberry.field(description="publish or rollback")
    state: JobState
    done: int = strawberry.field(description="Customers evaluated so far.")
    total: Optional[int] = strawberry.field(description="Customers to evaluate; null until known.")
    rule_set_version: Optional[int] = strawberry.field(description="The version the job evaluates and activates.")
    as_of: date = strawberry.field(description="The evaluation date used (the data's latest as_of when not given).")
    evaluated_customers: Optional[int] = strawberry.field(description="Set when the job succeeded.")
    error: Optional[str] = strawberry.field(description="Why the job failed; the previous version stays active.")
    requested_by: Optional[str]
    created_at: datetime
    started_at: Optional[datetime]
    finished_at: Optional[datetime]

    @classmethod
    def of(cls, j: jobs.Job) -> "Job":
        return cls(id=j.id, kind=j.kind, state=JobState(j.state), done=j.done, total=j.total,
                   rule_set_version=j.rule_set_version, as_of=j.as_of, evaluated_customers=j.evaluated_customers,
                   error=j.error, requested_by=j.requested_by, created_at=j.created_at, started_at=j.started_at,
                   finished_at=j.finished_at)


@strawberry.type
class JobQueries:
    @strawberry.field(description="One job: its state, progress and result (admin).", permission_classes=[IsAdmin])
    async def job(self, info: Info, id: int) -> Optional[Job]:
        c = ctx(info)
        found = await c.loaders.run(jobs.get, c.engine, id)
        return Job.of(found) if found else None

    @strawberry.field(description="Jobs, newest first (admin).", permission_classes=[IsAdmin])
    async def jobs(self, info: Info, first: Optional[int] = None, after: Optional[str] = None) -> Connection[Job]:
        limit = page_size(first)
        key = decode_cursor("jobs", after)
        c = ctx(info)
        found, total = await c.loaders.run(jobs.page, c.engine, limit + 1, key[0] if key else None)
        return build_connection([(Job.of(j), [j.id]) for j in found], kind="jobs", first=limit, total=total,
                                after=after)


