"""The ``comstream`` command line.

    comstream worker                         run one worker of the deployment
    comstream demo [--seconds N]             broker + worker + generated events + live leaderboard
    comstream publish FILE [--topic T]       validate JSON-lines events and produce them
    comstream replay EVENTS --plan P...      the batch reference: the engine over a file, no Kafka
    comstream simulate --events E --plan CURRENT --plan PROPOSED   what-if between two plans
    comstream plans validate FILE...         check plan files
    comstream plans publish FILE...          send PlanPublished events
    comstream leaderboard [--period P]       print the worker's leaderboard once
    comstream report performance --by rep,category --period 2026-11   BI figures vs before
    comstream statement --rep R --period P [--format html] [--lang zh]   a rep's statement
    comstream dlq list [--reason R] [--json] show dead letters
    comstream dlq export [--reason R] [--out F]  their events as JSON lines, to correct and publish
    comstream dlq replay --reason R | --offset N   re-publish dead letters whose cause was fixed
    comstream reconcile --period P           nothing missed: events balance, ledger = engine

Exit status: 0 on success, 1 when input was rejected or a check failed, 2 on usage errors;
``replay`` exits 3 when it dead-lettered events (the totals are those of the others),
``reconcile`` 3 and 4 as its help says.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from streams.settings import REPO_ROOT, Settings, SettingsError, load_settings

from .errors import ComstreamError


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    if getattr(args, "bootstrap", None):
        settings = replace(settings, bootstrap=args.bootstrap)
    return settings


def cmd_worker(args: argparse.Namespace) -> int:
    from .supervise import SUPERVISED_ENV, supervise, worker_command

    if not args.no_supervise and os.environ.get(SUPERVISED_ENV) != "1":
        return supervise(worker_command())
    from streams.worker import run_worker

    logging.basicConfig(
        level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    run_worker(_settings(args), loglevel=args.loglevel)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(_settings(args), args.seconds, args.rate, Path(args.plan))


def cmd_publish(args: argparse.Namespace) -> int:
    from .publish import print_report, publish_file

    settings = _settings(args)
    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    report = publish_file(path, settings.bootstrap, settings.topics, args.topic)
    print_report(report, path)
    return 0 if report.ok else 1


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay_command

    return replay_command(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from .replay import simulate_command

    return simulate_command(args)


def cmd_plans_validate(args: argparse.Namespace) -> int:
    from .planfiles import PlanFileError, load_plan_file

    failed = 0
    for name in args.files:
        try:
            doc = load_plan_file(Path(name))
            _parse_plan(doc)
            print(f"{name}: ok ({doc['plan_id']} version {doc['version']})")
        except PlanFileError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
        except ComstreamError as exc:
            failed += 1
            print(f"{name}: {exc}", file=sys.stderr)
    return 1 if failed else 0


def _parse_plan(doc: dict[str, object]) -> None:
    from processors.plans import parse_plan

    parse_plan(doc)


def cmd_plans_publish(args: argparse.Namespace) -> int:
    from .demo import plan_event
    from .publish import publish_events

    settings = _settings(args)
    events = [plan_event(Path(name), datetime.now(UTC)) for name in args.files]
    report = publish_events(events, settings.bootstrap, settings.topics)
    for e in events:
        print(f"published {e.plan_id} version {e.version} (effective {e.effective_from})")
    return 0 if report.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .reports import report_command

    return report_command(args, _settings(args).web_url)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import get_json, render

    settings = _settings(args)
    query = f"?limit={args.limit}" + (f"&period={args.period}" if args.period else "")
    board = get_json(settings.web_url, "/api/leaderboard" + query)
    Console().print(render(board, snapshot=True))
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from .dlq import list_command

    return list_command(_settings(args), args.reason, args.json)


def cmd_dlq_export(args: argparse.Namespace) -> int:
    from .dlq import export_command

    return export_command(_settings(args), args.reason, args.offset, args.out)


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from .dlq import replay_command

    return replay_command(_settings(args), args.reason, args.offset, args.dry_run)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from .reconcile_cmd import reconcile_command

    settings = _settings(args)
    if args.reconcile_bootstrap:
        settings = replace(settings, bootstrap=args.reconcile_bootstrap)
    return reconcile_command(
        settings, args.period, args.format, args.url, args.dsn, args.payment_wait
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comstream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "worker",
        help="run a worker (in a child process, started again when it ends itself with "
        "status 70 so that a message is read again)",
    )
    p.add_argument("--loglevel", default="warning")
    p.add_argument(
        "--no-supervise",
        action="store_true",
        help="run the worker in this process; status 70 then needs an outside restart",
    )
    p.set_defaults(fn=cmd_worker)

    p = sub.add_parser("demo", help="run the live demo")
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    p.add_argument("--rate", type=float, default=40.0, help="events per second")
    p.add_argument("--plan", default=str(REPO_ROOT / "plans" / "simple.yaml"))
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("publish", help="publish JSON-lines events")
    p.add_argument("file")
    p.add_argument("--topic", help="produce every event to this topic instead of its own")
    p.set_defaults(fn=cmd_publish)

    p = sub.add_parser(
        "replay",
        help="run the engine over an event file (no Kafka)",
        description="Run the engine over an event file (no Kafka) and print per-rep, "
        "per-period totals. An event the engine refuses, or a line whose figures have more "
        "decimal places than allowed (invalid.amount_precision), is printed as a dead "
        "letter and every other event still counts.",
        epilog="Exit status: 0 every event processed; 3 some events were dead-lettered "
        "(printed with the totals of all the others); 1 an error, no totals (a file that "
        "cannot be read, a line that is not an event); 2 usage error.",
    )
    p.add_argument("events", help="JSON lines (.jsonl) or an Avro container file (.avro)")
    p.add_argument("--plan", action="append", default=[], help="plan file (repeatable)")
    p.add_argument("--out", help="write the deltas as JSON lines")
    p.add_argument("--clickhouse", help="also insert the deltas into ClickHouse at this DSN")
    p.add_argument("--json", action="store_true", help="print totals as JSON")
    p.set_defaults(fn=cmd_replay)

    p = sub.add_parser("simulate", help="what-if: compare two plans over the same events")
    p.add_argument("--events", required=True)
    p.add_argument("--plan", action="append", required=True, help="current, then proposed")
    p.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="replays run in parallel, one process per plan (default: 2 where there are "
        "2 cores; each holds its own engine state)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_simulate)

    plans = sub.add_parser("plans", help="plan files").add_subparsers(
        dest="plans_cmd", required=True
    )
    p = plans.add_parser("validate", help="check plan files")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=cmd_plans_validate)
    p = plans.add_parser("publish", help="publish plan files as PlanPublished events")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=cmd_plans_publish)

    dlq = sub.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq_cmd", required=True)
    p = dlq.add_parser("list", help="show dead letters")
    p.add_argument("--reason", action="append", default=[], help="reason prefix (repeatable)")
    p.add_argument("--json", action="store_true", help="JSON lines, with the decoded event")
    p.set_defaults(fn=cmd_dlq_list)
    p = dlq.add_parser(
        "export",
        help="write dead letters' events as JSON lines to correct and `comstream publish`",
    )
    p.add_argument("--reason", action="append", default=[], help="reason prefix (repeatable)")
    p.add_argument("--offset", action="append", default=[], type=int, help="dlq offset")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(fn=cmd_dlq_export)
    p = dlq.add_parser("replay", help="re-publish dead letters to their original topic")
    p.add_argument("--reason", action="append", default=[], help="reason prefix (repeatable)")
    p.add_argument("--offset", action="append", default=[], type=int, help="dlq offset")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(fn=cmd_dlq_replay)

    p = sub.add_parser(
        "reconcile",
        help="check that nothing was missed (exit 0 ok, 1 imbalance, 3 ledger, 4 unavailable)",
    )
    p.add_argument("--period", required=True, help="YYYY-MM or YYYY-Qn")
    p.add_argument("--format", choices=("table", "json"), default="table")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--url", help="the sink worker's API (default: from the settings)")
    source.add_argument("--dsn", help="read the ledger from ClickHouse directly (no worker)")
    p.add_argument("--bootstrap", dest="reconcile_bootstrap", help="Kafka bootstrap servers")
    p.add_argument(
        "--payment-wait",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="list payments waiting longer than this for their order (default 24)",
    )
    p.set_defaults(fn=cmd_reconcile)

    p = sub.add_parser("leaderboard", help="print the leaderboard once")
    p.add_argument("--period")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(fn=cmd_leaderboard)

    from .reports import add_parsers

    add_parsers(sub, cmd_report)

    from .payouts_cmd import add_parsers as add_payout_parsers

    add_payout_parsers(sub, _settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except ComstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
