"""The `tiergraph` command: thin wrappers over domain/ (serve, demo, import, rules, evaluate, schema)."""
from __future__ import annotations

import argparse
import sys
from datetime import date
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


def _import(engine, directory: Path) -> int:
    from domain.import_rows import ImportFailed
    from domain.importer import import_directory

    with _progress() as bar:
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        try:
            result = import_directory(engine, directory, progress=report)
        except ImportFailed as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
    console.print(f"imported {directory}: {result.summary()}")
    return 0


def cmd_import(args, settings: Settings) -> int:
    return _import(_engine(settings), Path(args.directory))


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
    _evaluate_if_possible(engine, settings)
    if args.no_serve:
        return 0
    return cmd_serve(args, settings)


def _evaluate_if_possible(engine, settings: Settings, as_of: date | None = None) -> None:
    try:
        from domain.evaluation import distribution, run_batch
        from rules.compiler import load_rules_file
    except ImportError:  # the rule engine is not part of this build yet
        return
    ruleset = load_rules_file(settings.rules_path)
    run_batch(engine, ruleset, as_of or date.today())
    _print_distribution(distribution(engine))


def _print_distribution(dist) -> None:
    from rich.table import Table

    table = Table(title="customers per tier and status")
    statuses = sorted({s for counts in dist.values() for s in counts})
    table.add_column("tier")
    for s in statuses:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    for tier, counts in dist.items():
        table.add_row(tier, *[str(counts.get(s, 0)) for s in statuses], str(sum(counts.values())))
    Console().print(table)


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
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser("import", help="import a directory of CSV files (see README for the columns)")
    imp.add_argument("directory")
    imp.set_defaults(func=cmd_import)

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
        console.print(f"[red]configuration error: {exc}[/red]")
        return 2
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
