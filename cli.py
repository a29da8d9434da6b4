"""The `tiergraph` command: thin wrappers over domain/ (serve, demo, import, rules, evaluate, schema)."""
from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from domain.settings import Settings, SettingsError

console = Console(stderr=True)


def _engine(settings: Settings):
    from domain.db import make_engine, migrate

    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    migrate(engine)  # every command that touches the database brings it to head first
    return engine


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _import(engine, directory: Path, skip_bad_rows: bool = False) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from domain.import_rows import ImportFailed
    from domain.importer import import_directory

    with _progress() as bar:
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        try:
            result = import_directory(engine, directory, progress=report, skip_bad_rows=skip_bad_rows)
        except ImportFailed as exc:
            console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
            return 1
        except SQLAlchemyError as exc:  # the transaction rolled back: say so in a line, not a traceback
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            console.print(f"import rejected by the database, nothing was written: {reason}", style="red",
                          markup=False, highlight=False, soft_wrap=True)
            return 1
    console.print(f"imported {directory}: {result.summary()}")
    if result.ignored:  # most often a misspelt column, which would otherwise change nothing without a word
        console.print(f"column(s) not read: {'; '.join(result.ignored)}", style="yellow", markup=False)
    if result.skipped:
        console.print(f"{len(result.skipped)} bad row(s) left out:", style="yellow")
        for problem in result.skipped[:50]:
            console.print(f"  {problem}", markup=False)
    return 0


def cmd_import(args, settings: Settings) -> int:
    return _import(_engine(settings), Path(args.directory), args.skip_bad_rows)


def cmd_serve(args, settings: Settings) -> int:
    import uvicorn

    from server import create_app

    uvicorn.run(create_app(settings), host=args.host or settings.host, port=args.port or settings.port)
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from domain.demo import generate_demo

    out = Path(args.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"generating the demo base (seed {args.seed}, {args.customers} customers) in {out}")
    generate_demo(out, seed=args.seed, customers=args.customers)
    engine = _engine(settings)
    if _import(engine, out) != 0:
        return 1
    # Month-end evaluations first, so the demo has a history: tier moves, lost dates, change events.
    for month_end in _past_month_ends(date.today(), args.history_months):
        if _evaluate(engine, settings, month_end, show=False) != 0:
            return 1
    if _evaluate(engine, settings, None) != 0:
        return 1
    _prepare_loss_history(engine, settings)
    if args.no_serve:
        return 0
    return cmd_serve(args, _with_demo_admin_token(settings, args.host or settings.host, args.port or settings.port))


def _with_demo_admin_token(settings: Settings, host: str, port: int) -> Settings:
    """The demo serves the rule editor: without TIERGRAPH_ADMIN_TOKEN it makes a one-off admin token and shows it
    (admin calls stay off on a plain `serve` without one)."""
    console.print(f"pages: http://{host}:{port}/  ·  GraphiQL: http://{host}:{port}/graphql", markup=False)
    if settings.admin_token:
        return settings
    token = secrets.token_urlsafe(12)
    console.print(f"admin token for this demo (the rule editor asks for it): {token}", markup=False)
    return dataclasses.replace(settings, admin_token=token)


def _past_month_ends(today: date, months: int) -> list[date]:
    """The last day of each of the `months` calendar months before today's, oldest first."""
    ends = []
    first = today.replace(day=1)
    for _ in range(months):
        end = first - timedelta(days=1)
        ends.append(end)
        first = end.replace(day=1)
    return ends[::-1]


def _evaluate(engine, settings: Settings, as_of: date | None, *, show: bool = True) -> int:
    from domain.evaluation import distribution
    from domain.rulesets import ActiveRules
    from rules.errors import RuleErrors

    try:
        version, ruleset = ActiveRules(engine, settings.rules_path).current()
    except (RuleErrors, OSError) as exc:
        console.print(f"cannot evaluate: the rules in force have errors ({settings.rules_path}):", style="red",
                      markup=False)
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 1
    as_of = as_of or date.today()
    from domain.evaluation_state import WriterBusy
    from domain.full_batch import evaluate_base

    with _progress() as bar:
        steps: dict[str, int] = {}

        def value_progress(step: str, done: int, total: int) -> None:
            if step not in steps:
                steps[step] = bar.add_task(f"value scores: {step}", total=total)
            bar.update(steps[step], completed=done, total=total)

        task = bar.add_task(f"evaluating rules as of {as_of}", total=None)
        try:  # scores and rule results in ONE transaction: a kill between them leaves both as they were
            value_run, run = evaluate_base(
                engine, ruleset, version.id, as_of, model=settings.value_model, monetary=settings.rfm_monetary,
                value_progress=value_progress,
                rules_progress=lambda done, total: bar.update(task, completed=done, total=total))
        except WriterBusy as exc:
            console.print(f"not evaluated: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
            return 1
    fit = value_run.fit or {}
    if fit.get("status") == "fitted":
        console.print(f"scored {value_run.customer_count} customers ({fit.get('model')} fitted on "
                      f"{fit.get('customers')} customers)", markup=False)
        for note in fit.get("notes") or []:  # the fit's warnings, also in valueModel { notes }
            console.print(f"  lifetime model note: {note}", markup=False, highlight=False)
    else:  # said plainly: P(alive) and CLV are null for every customer until a model is fitted
        console.print(f"scored {value_run.customer_count} customers; lifetime model not fitted: {fit.get('reason')} "
                      "-- P(alive), expected orders, expected spend and CLV are unknown", style="yellow",
                      markup=False, highlight=False)
    console.print(f"evaluated {run.customer_count} customers as of {as_of} with rule set version {version.version}")
    if not show:
        return 0
    _print_distribution(engine, distribution(engine), [r.label for r in ruleset.tiers],
                        [r.label for r in ruleset.statuses])
    return 0


def _print_distribution(engine, dist, tier_order: list[str], status_order: list[str]) -> None:
    """Customers per tier (rows) and status (columns) of the stored results, in the rule set's order."""
    import sqlalchemy as sa
    from rich.table import Table

    with engine.connect() as conn:
        cells = {(t, s): c for t, s, c in conn.execute(sa.text(
            "select tier, status, count(*) from customer_evaluations group by tier, status"))}
    def ordered(found, order):
        rank = {label: i for i, label in reversed(list(enumerate(order)))}
        return sorted(found, key=lambda x: (rank.get(x, len(order)), str(x)))

    statuses = ordered(dist.statuses, status_order)
    tiers = ordered(dist.tiers, tier_order)
    table = Table(title=f"customers per tier and status (as of {dist.as_of})")
    table.add_column("tier")
    for s in statuses:
        table.add_column(str(s), justify="right")
    table.add_column("total", justify="right")
    for t in tiers:
        table.add_row(str(t), *[str(cells.get((t, s), 0)) for s in statuses], str(dist.tiers[t]))
    table.add_row("total", *[str(dist.statuses[s]) for s in statuses], str(dist.customers), style="bold")
    Console().print(table)


def cmd_evaluate(args, settings: Settings) -> int:
    engine = _engine(settings)
    if _evaluate(engine, settings, args.as_of) != 0:
        return 1
    _prepare_loss_history(engine, settings)
    return 0


def _prepare_loss_history(engine, settings: Settings) -> None:
    """The stored loss history for the rules in force, rebuilt now rather than by the first loss report."""
    from domain import loss_store

    loss_store.prepare_after_batch(engine, _active_ruleset(engine, settings))


def cmd_tick(args, settings: Settings) -> int:
    from domain.evaluation_state import WriterBusy
    from domain.tick import tick

    try:
        report = tick(_engine(settings), args.until)
    except WriterBusy as exc:  # chunks finished before stay committed; the rest stay due for the next tick
        console.print(f"tick stopped: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 1
    console.print(report.summary(), markup=False, highlight=False)
    return 0


def cmd_rules_publish(args, settings: Settings) -> int:
    from domain.rulesets import EvaluationFailed, publish
    from rules.errors import RuleErrors

    try:
        version, run = publish(_engine(settings), Path(args.file).read_text(encoding="utf-8-sig"),
                               by=f"cli:{args.file}", as_of=args.as_of)
    except RuleErrors as exc:
        print(f"{args.file}: not published, nothing changed\n{exc}")
        return 1
    except EvaluationFailed as exc:  # the version is stored, inactive; the one in force stays in force
        print(f"{args.file}: not made active: {exc}")
        return 1
    print(f"published {args.file} as version {version.version}: active, {run.customer_count} customers "
          f"evaluated as of {run.as_of}")
    return 0


def cmd_rules_history(args, settings: Settings) -> int:
    from domain.rulesets import history

    for v in history(_engine(settings)):
        print(f"{'*' if v.is_active else ' '} v{v.version}  {v.published_at:%Y-%m-%d %H:%M}  {v.published_by or ''}")
    return 0


def cmd_rules_rollback(args, settings: Settings) -> int:
    from domain.rulesets import EvaluationFailed, RuleSetNotFound, rollback

    try:
        version, run = rollback(_engine(settings), args.version, as_of=args.as_of)
    except (RuleSetNotFound, EvaluationFailed) as exc:
        print(str(exc))
        return 1
    print(f"version {version.version} is active again: {run.customer_count} customers evaluated as of {run.as_of}")
    return 0


def cmd_rules_check(args, settings: Settings) -> int:
    from rules.compiler import validate_rules

    try:
        source = Path(args.file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        console.print(f"cannot read {args.file}: {exc.strerror}", style="red", markup=False)
        return 2
    problems = validate_rules(source)
    errors = [p for p in problems if not p.is_warning]
    for p in problems:  # plain print: a caret must never be re-wrapped by the terminal layout
        print(f"{args.file}: {'warning' if p.is_warning else 'error'}: {p}")
    if errors:
        print(f"{args.file}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
        return 1
    print(f"{args.file}: ok, {len(problems)} warning(s)")
    return 0


def cmd_schema(args, settings: Settings) -> int:
    from schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output:
        Path(args.output).write_text(sdl, encoding="utf-8")
    else:
        sys.stdout.write(sdl)
    return 0


def cmd_migrate(args, settings: Settings) -> int:
    _engine(settings)
    console.print("database is at the latest migration")
    return 0


def cmd_explain(args, settings: Settings) -> int:
    """Why one customer has its tier, status and tags, from the stored evaluation's date."""
    import sqlalchemy as sa

    from domain.evaluation import explain_customer
    from domain.models import Customer, CustomerEvaluation
    from domain.rulesets import ActiveRules

    engine = _engine(settings)
    customers, evals = Customer.__table__, CustomerEvaluation.__table__
    with engine.connect() as conn:
        row = conn.execute(sa.select(customers.c.id, customers.c.name, evals.c.as_of)
                           .select_from(customers.outerjoin(evals, evals.c.customer_id == customers.c.id))
                           .where(customers.c.external_id == args.external_id)).first()
    if row is None:
        print(f"no customer with external id {args.external_id!r}")
        return 1
    as_of = args.as_of or row.as_of or date.today()
    _, ruleset = ActiveRules(engine, settings.rules_path).current()
    print(f"{args.external_id} {row.name}, as of {as_of}:")
    for line in explain_customer(engine, ruleset, row.id, as_of).lines():
        print(f"  {line}")
    return 0


def _loss_rules(engine, settings: Settings):
    """The rules loss reports use: reading the stored loss history (domain.loss_store), rebuilt if stale."""
    from domain.loss_store import prepared

    return prepared(engine, _active_ruleset(engine, settings))


def _active_ruleset(engine, settings: Settings):
    from domain.rulesets import ActiveRules

    return ActiveRules(engine, settings.rules_path).current()[1]


def _loss_period(engine, args) -> tuple[date, date]:
    from domain.data_date import data_today

    today = data_today(engine)
    end = min(args.to or today, today)
    return args.from_ or end.replace(day=1), end


def cmd_loss(args, settings: Settings) -> int:
    """Who was lost in a period, per tier they had then, and the biggest losses."""
    from rich.table import Table

    from domain.loss import lost_customers, loss_summary

    engine = _engine(settings)
    start, end = _loss_period(engine, args)
    rules = _loss_rules(engine, settings)
    table = Table(title=f"lost {start} .. {end}, per tier at loss")
    for name in ("tier at loss", "customers", "episodes", "revenue lost", "margin lost", "rule", "blocked",
                 "manual", "overdue complaints", "late deliveries", "reactivated"):
        table.add_column(name, justify="left" if name == "tier at loss" else "right")
    for r in loss_summary(engine, rules, start, end):
        table.add_row(str(r.tier_at_loss), f"{r.customers:,}", f"{r.episodes:,}", f"{r.revenue_lost:,.0f}",
                      "unknown" if r.margin_lost is None else f"{r.margin_lost:,.0f}", f"{r.rule:,}",
                      f"{r.blocked:,}", f"{r.manual:,}", f"{r.with_overdue_complaints:,}",
                      f"{r.with_late_deliveries:,}", f"{r.reactivated:,}")
    Console().print(table)
    top = Table(title=f"the {args.top} biggest losses")
    for name in ("customer", "lost on", "how", "why", "tier", "revenue lost", "last order", "reactivated"):
        top.add_column(name)
    for e in lost_customers(engine, rules, start, end, limit=args.top):
        top.add_row(f"{e.external_id} {e.name[:28]}", str(e.lost_on), e.how, e.rule_text or e.reason or "",
                    e.tier_at_loss or "-", f"{e.revenue_lost:,.0f}", str(e.last_order_at or "-"),
                    str(e.reactivated_on or "-"))
    Console().print(top)
    return 0


def cmd_loss_reasons(args, settings: Settings) -> int:
    """Why: the signs seen on lost customers against retained ones."""
    from rich.table import Table

    from domain.loss_reasons import loss_reasons

    engine = _engine(settings)
    start, end = _loss_period(engine, args)
    found = loss_reasons(engine, _loss_rules(engine, settings), start, end)
    table = Table(title=f"why {found.lost_customers:,} customers were lost {start} .. {end} "
                        f"(against {found.retained_customers:,} retained)")
    for name in ("reason", "lost", "retained", "ratio"):
        table.add_column(name, justify="left" if name == "reason" else "right")
    pct = lambda x: "-" if x is None else f"{x:.1%}"  # noqa: E731
    for r in found.reasons:
        table.add_row(r.reason, pct(r.lost_share), pct(r.retained_share), "-" if r.ratio is None else f"{r.ratio:.1f}x")
    Console().print(table)
    return 0


def cmd_winback(args, settings: Settings) -> int:
    """Did anyone try to win them back: per owner rep."""
    import sqlalchemy as sa
    from rich.table import Table

    from domain.data_date import data_today
    from domain.models import SalesRep
    from domain.win_back import win_back_by_rep

    engine = _engine(settings)
    start, end = _loss_period(engine, args)
    rows = win_back_by_rep(engine, _loss_rules(engine, settings), start, end, data_today(engine))
    reps = SalesRep.__table__
    with engine.connect() as conn:
        names = dict(conn.execute(sa.select(reps.c.id, reps.c.name)).all())
    table = Table(title=f"win-back of the customers lost {start} .. {end}, per owner rep")
    for name in ("rep", "lost", "with attempt", "without", "reactivated within 90 days of one", "attempts"):
        table.add_column(name, justify="left" if name == "rep" else "right")
    for r in rows:
        table.add_row(names.get(r.rep_id, "(no owner)"), f"{r.lost_customers:,}", f"{r.with_attempt:,}",
                      f"{r.without_attempt:,}", f"{r.reactivated_within_90_days_of_attempt:,}", f"{r.attempts:,}")
    Console().print(table)
    return 0


def cmd_bridge(args, settings: Settings) -> int:
    """At what cost: the month's revenue against the base month's, customer by customer."""
    from rich.table import Table

    from domain import revenue_bridge as rb
    from domain.loss_history import lost_customers_on

    engine = _engine(settings)
    month = date.fromisoformat(args.month + "-01")
    compare_to = rb.SAME_MONTH_LAST_YEAR if args.compare_to == "last-year" else rb.PREVIOUS_MONTH
    lost = lost_customers_on(_loss_rules(engine, settings), rb.month_end(month))
    b = rb.revenue_bridge(engine, month, compare_to, lost)
    table = Table(title=f"revenue {b.base_month:%Y-%m} {b.base_total:,.0f} -> {b.month:%Y-%m} {b.total:,.0f}")
    for name in ("category", "customers", "revenue effect", "margin effect"):
        table.add_column(name, justify="left" if name == "category" else "right")
    for k in b.categories:
        sign = "-" if k.category in ("CONTRACTION", "STOPPED_LOST", "STOPPED_QUIET") else "+"
        table.add_row(k.category, f"{k.customers:,}", f"{sign}{k.revenue:,.0f}",
                      "unknown" if k.margin is None else f"{sign}{k.margin:,.0f}")
    Console().print(table)
    return 0


def cmd_backtest(args, settings: Settings) -> int:
    """Choosing a loss rule: what each condition would have declared, and how many of those ordered again."""
    from rich.table import Table

    from domain.backtest import backtest
    from rules.compiler import compile_condition
    from rules.errors import RuleErrors

    engine = _engine(settings)
    start, end = _loss_period(engine, args)
    ruleset = _active_ruleset(engine, settings)
    table = Table(title=f"loss conditions backtested {start} .. {end}, ordered again within {args.horizon} days")
    for name in ("condition", "declared", "ordered again", "false loss rate", "median days from last order",
                 "horizon not over"):
        table.add_column(name, justify="left" if name == "condition" else "right")
    for text in args.conditions:
        try:
            condition = compile_condition(text, ruleset)
        except RuleErrors as exc:
            print(f"{text!r}: {exc}", file=sys.stderr)
            return 1
        b = backtest(engine, condition, ruleset, start, end, args.horizon)
        table.add_row(text, f"{b.declared:,}", f"{b.ordered_again:,}",
                      "-" if b.false_loss_rate is None else f"{b.false_loss_rate:.1%}",
                      "-" if b.median_days_from_last_order is None else f"{b.median_days_from_last_order:.0f}",
                      f"{b.horizon_incomplete:,}")
    Console().print(table)
    return 0


def cmd_privacy_export(args, settings: Settings) -> int:
    """Everything held about one customer, as JSON on stdout (recorded in the privacy audit)."""
    import json

    from domain import privacy

    try:
        found = privacy.export_customer(_engine(settings), args.external_id, by=args.by)
    except privacy.CustomerNotFound as exc:
        console.print(str(exc), style="red", markup=False)
        return 1
    sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    return 0


def cmd_privacy_erase(args, settings: Settings) -> int:
    """Erase one customer's personal data; its records stay, anonymised (docs/privacy.md)."""
    from domain import privacy
    from domain.evaluation_state import WriterBusy
    from domain.writes import BadInput

    try:
        done = privacy.erase_customer(_engine(settings), args.external_id, args.by)
    except (privacy.CustomerNotFound, privacy.ErasedIdTaken, BadInput, WriterBusy) as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        return 1
    name = done.customer.external_id
    if not done.changed:
        print(f"{name} was already erased at {done.erased_at:%Y-%m-%d %H:%M} UTC; nothing changed")
        return 0
    values = ", ".join(f"{k} {v}" for k, v in done.erased.items() if v) or "none"
    kept = ", ".join(f"{k} {v}" for k, v in done.kept.items() if v) or "none"
    print(f"{args.external_id} erased: now {name}\nvalues replaced: {values}\nrecords kept: {kept}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiergraph", description="Customer value, tiers and loss for your CRM.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the GraphQL API (GraphiQL at /graphql)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="generate, import and evaluate a demo customer base, then serve it")
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--customers", type=int, default=5000)
    demo.add_argument("--data-dir", default="demo-data", help="where the generated CSV files go")
    demo.add_argument("--no-serve", action="store_true", help="stop after importing and evaluating")
    demo.add_argument("--history-months", type=int, default=6,
                      help="also evaluate at the end of each of the last N months, to build a history of moves")
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser("import", help="import a directory of CSV files (see README for the columns)")
    imp.add_argument("directory")
    imp.add_argument("--skip-bad-rows", action="store_true",
                     help="import the good rows and list the bad ones, instead of rejecting the whole import")
    imp.set_defaults(func=cmd_import)

    ev = sub.add_parser("evaluate", help="evaluate the rules over the whole base and store the results")
    ev.add_argument("--as-of", type=date.fromisoformat, help="evaluation date YYYY-MM-DD (default: today)")
    ev.set_defaults(func=cmd_evaluate)

    tk = sub.add_parser("tick", help="re-evaluate only the customers whose next change date has come (for cron)")
    tk.add_argument("--until", type=date.fromisoformat,
                    help="the tick's date YYYY-MM-DD (default: today; never before the stored evaluation)")
    tk.set_defaults(func=cmd_tick)

    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="check a rule file: exit 0 when valid, 1 with errors")
    check.add_argument("file")
    check.set_defaults(func=cmd_rules_check)
    pub = rules_sub.add_parser("publish", help="store a rule file as the next version, evaluate the base with it "
                                              "and make it active (a failed evaluation leaves the old one active)")
    pub.add_argument("file")
    pub.add_argument("--as-of", type=date.fromisoformat, help="default: the date of the stored evaluation")
    pub.set_defaults(func=cmd_rules_publish)
    hist = rules_sub.add_parser("history", help="list published versions (* = active)")
    hist.set_defaults(func=cmd_rules_history)
    back = rules_sub.add_parser("rollback", help="evaluate the base with an earlier version, make it active again")
    back.add_argument("version", type=int)
    back.add_argument("--as-of", type=date.fromisoformat, help="default: the date of the stored evaluation")
    back.set_defaults(func=cmd_rules_rollback)

    exp = sub.add_parser("explain", help="why a customer has its tier, status and tags")
    exp.add_argument("external_id")
    exp.add_argument("--as-of", type=date.fromisoformat, help="default: the date of the stored evaluation")
    exp.set_defaults(func=cmd_explain)

    loss = sub.add_parser("loss", help="customers lost in a period per tier at loss, and the biggest losses")
    loss.add_argument("--top", type=int, default=10, help="how many of the biggest losses to list")
    loss.add_argument("--from", dest="from_", type=date.fromisoformat, help="first loss date (default: the first "
                      "day of --to's month)")
    loss.add_argument("--to", type=date.fromisoformat, help="last loss date (default and at most: the data's today)")
    loss.set_defaults(func=cmd_loss)

    def period(p):
        p.add_argument("--from", dest="from_", type=date.fromisoformat, help="first loss date (default: the first "
                       "day of --to's month)")
        p.add_argument("--to", type=date.fromisoformat, help="last loss date (default and at most: the data's today)")
        return p

    reasons = period(sub.add_parser("loss-reasons", help="why: complaints and late deliveries of lost customers "
                                                         "against retained ones"))
    reasons.set_defaults(func=cmd_loss_reasons)
    winback = period(sub.add_parser("winback", help="who tried to win lost customers back, per owner rep"))
    winback.set_defaults(func=cmd_winback)
    bridge = sub.add_parser("bridge", help="a month's revenue against the previous month (or the same month last "
                                           "year): new, returning, expansion, contraction, stopped")
    bridge.add_argument("month", help="YYYY-MM")
    bridge.add_argument("--compare-to", choices=("previous", "last-year"), default="previous")
    bridge.set_defaults(func=cmd_bridge)
    bt = period(sub.add_parser("backtest", help="what loss conditions would have declared, and how many of those "
                                                "ordered again (e.g. \"no order 90d\" \"no order 120d\")"))
    bt.add_argument("conditions", nargs="+", help="conditions in the rule language")
    bt.add_argument("--horizon", type=int, default=180, help="days after the loss to look for an order")
    bt.set_defaults(func=cmd_backtest)

    privacy = sub.add_parser("privacy", help="export or erase one customer's personal data (docs/privacy.md)")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    pexp = privacy_sub.add_parser("export", help="print everything held about a customer as JSON")
    pexp.add_argument("external_id")
    pexp.add_argument("--by", default="cli", help="who asked, for the privacy audit (default: cli)")
    pexp.set_defaults(func=cmd_privacy_export)
    perase = privacy_sub.add_parser("erase", help="replace a customer's personal fields with anonymous values; "
                                                  "its records, scores, tiers and loss history stay")
    perase.add_argument("external_id")
    perase.add_argument("--by", required=True, help="who erased it, for the privacy audit")
    perase.set_defaults(func=cmd_privacy_erase)

    mig = sub.add_parser("migrate", help="bring the database to the latest migration")
    mig.set_defaults(func=cmd_migrate)

    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.add_argument("--output", "-o")
    schema.set_defaults(func=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        console.print(f"configuration error: {exc}", style="red", markup=False, soft_wrap=True)
        return 2
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
