"""Benchmark: the yearly DRL comparison over >= 500,000 studies on PostgreSQL.

    .venv/bin/python bench/drl.py [--studies 500000] [--database bench_drl] [--year 2024] [--reuse-only]
    .venv/bin/python bench/drl.py --database dosereg_bench --year 2025 --reuse-only   # generate_demo_data --bulk data

Reuses the studies of the year already in the database (demo studies from ``generate_demo_data --bulk`` are then
compared with include_demo, as ``drl_report --include-demo`` would).  Otherwise it creates (once) a private database,
migrates it and tops it up to ``--studies`` with a year of synthetic studies straight in SQL
(``INSERT ... SELECT FROM generate_series``: 10 CT units and 4 cath labs, 80 % CT with a localizer and two
acquisitions each, 20 % interventional cardiology with KAP; ages 0-95 with some unknown, weights 40-120 kg with some
unknown; ``--ct-events`` events per CT study), which takes seconds where ``generate_demo_data --bulk`` (the recording service, in batches) takes tens of
minutes.  Then it refreshes the planner statistics, times ``drl_comparison_run`` for that year three times and prints
the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _ensure_database(base_url: str, name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(base_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return base_url.rsplit("/", 1)[0] + "/" + name


def _insert_select(model, count_sql: str, exprs: dict[str, str], params: list | None = None) -> None:
    """INSERT every concrete column: the given SQL expressions, else the field's default as a parameter."""
    from django.db import connection

    cols, values, all_params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        cols.append(field.column)
        if field.column in exprs:
            values.append(exprs[field.column].replace("%", "%%"))  # modulo, not a placeholder
        else:
            kind = field.get_internal_type()
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) or (
                    kind in ("DateTimeField", "DateField") and not field.null):
                values.append("now()")
                continue
            if field.has_default():
                default = field.get_default()
            elif field.null:
                default = None
            elif "Integer" in kind or kind in ("FloatField", "DecimalField"):
                default = 0
            elif kind == "BooleanField":
                default = False
            elif kind == "JSONField":
                default = {}
            else:
                default = ""
            values.append("%s")
            all_params.append(field.get_db_prep_save(default, connection))
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(cols)}) SELECT {', '.join(values)} FROM {count_sql}"
    with connection.cursor() as cur:
        cur.execute(sql, all_params + (params or []))


def generate(n: int, year: int, ct_events: int = 3) -> None:
    from django.db import connection, transaction

    from dosereg.registry.models import (
        DoseReport,
        IrradiationEvent,
        Patient,
        ReceivedObject,
        StandardExam,
        Study,
    )
    from tests.factories import EquipmentFactory, RoomFactory

    ct_exams = list(StandardExam.objects.filter(modality_type="CT").values_list("pk", flat=True))
    xa_exams = list(StandardExam.objects.filter(modality_type="fluoroscopy").values_list("pk", flat=True))
    # each unit in a room of its own, so the room filters of the pages (bench/web.py on this database) have rooms
    units = [EquipmentFactory(identity_key=f"bench:ct{i}", manufacturer="Bench", model=f"CT {i}", station_name=f"CT{i}",
                              room=RoomFactory(name=f"Bench CT room {i}")) for i in range(10)]
    labs = [EquipmentFactory(identity_key=f"bench:xa{i}", manufacturer="Bench", model=f"Cath {i}",
                             station_name=f"CATH{i}", room=RoomFactory(name=f"Bench cath lab {i}")) for i in range(4)]
    ct_ids = "ARRAY[" + ",".join(str(u.pk) for u in units) + "]"
    xa_ids = "ARRAY[" + ",".join(str(u.pk) for u in labs) + "]"
    ct_ex = "ARRAY[" + ",".join(map(str, ct_exams)) + "]"
    xa_ex = "ARRAY[" + ",".join(map(str, xa_exams)) + "]"
    with transaction.atomic():
        p0 = (Patient.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)
        _insert_select(Patient, "generate_series(1, %s) g", {"patient_id": "'B' || g"}, [n])
        is_ct = "(g % 5 <> 0)"
        _insert_select(Study, "generate_series(1, %s) g", {
            "study_instance_uid": "'2.25.999.' || g",
            "patient_id": f"{p0} + g",
            "equipment_id": f"CASE WHEN {is_ct} THEN ({ct_ids})[1 + g % 10] ELSE ({xa_ids})[1 + g % 4] END",
            "study_date": f"DATE '{year}-01-01' + (g % 365)",
            "modality_type": f"CASE WHEN {is_ct} THEN 'CT' ELSE 'fluoroscopy' END",
            "standard_exam_id": f"CASE WHEN {is_ct} THEN ({ct_ex})[1 + (g / 7) % {len(ct_exams)}] "
                                f"ELSE ({xa_ex})[1 + (g / 7) % {len(xa_exams)}] END",
            "age_years": "CASE WHEN g % 17 = 0 THEN NULL ELSE (g::bigint * 7919) % 96 END",
            "weight_kg": "CASE WHEN g % 3 = 0 THEN NULL ELSE 40 + (g::bigint * 104729) % 81 END",
            "dlp_total_mgycm": f"CASE WHEN {is_ct} THEN 100 + random() * 700 END",
            "kap_total_gycm2": f"CASE WHEN {is_ct} THEN NULL ELSE 5 + random() * 120 END",
            "event_count": f"CASE WHEN {is_ct} THEN {ct_events} ELSE 0 END",
        }, [n])
        s0 = Study.objects.filter(study_instance_uid="2.25.999.1").values_list("pk", flat=True).get() - 1
        _insert_select(ReceivedObject, "generate_series(1, %s) g WHERE (g %% 5 <> 0)", {
            "sop_instance_uid": "'2.25.998.' || g", "sha256": "lpad(g::text, 64, '0')", "source": "'import'",
            "study_instance_uid": "'2.25.999.' || g"}, [n])
        r0 = ReceivedObject.objects.filter(sop_instance_uid="2.25.998.1").values_list("pk", flat=True).get() - 1
        _insert_select(DoseReport, f"{ReceivedObject._meta.db_table} ro WHERE ro.sop_instance_uid LIKE '2.25.998.%%'", {
            "received_object_id": "ro.id",
            "study_id": f"{s0} + substr(ro.sop_instance_uid, 10)::int",
            "sop_instance_uid": "ro.sop_instance_uid", "sop_class_uid": "'1.2.840.10008.5.1.4.1.1.88.67'",
            "source_kind": "'rdsr'", "state": "'current'"})
        del r0
        _insert_select(IrradiationEvent,
                       f"{DoseReport._meta.db_table} r CROSS JOIN generate_series(0, {ct_events - 1}) k "
                       f"WHERE r.sop_instance_uid LIKE '2.25.998.%%'", {
                           "study_id": "r.study_id", "report_id": "r.id",
                           "irradiation_event_uid": "r.sop_instance_uid || '.' || k", "sequence": "k",
                           "is_current": "true", "is_localizer": "k = 0",
                           "protocol": "CASE WHEN k = 0 THEN 'Topogram' ELSE 'Routine' END",
                           "ctdivol_mgy": "CASE WHEN k = 0 THEN 0.1 ELSE 3 + random() * 15 END",
                           "kvp": "120"})
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=500_000)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--database", default="bench_drl",
                        help="database name; an existing one (e.g. dosereg_bench filled by generate_demo_data --bulk) "
                             "is reused when it holds enough studies of the year")
    parser.add_argument("--ct-events", type=int, default=3,
                        help="irradiation events per CT study (a localizer, then acquisitions); 5 gives 4 million "
                             "events per million studies")
    parser.add_argument("--reuse-only", action="store_true", help="never generate; time what the database holds")
    parser.add_argument("--queries", type=int, default=5, help="print the slowest queries of each run (0: none)")
    parser.add_argument("--base-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = _ensure_database(args.base_url, args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dosereg.settings")
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    import datetime as dt

    from django.core.management import call_command
    from django.db import connection

    from dosereg.registry.models import IrradiationEvent, Study
    from drl.services import drl_comparison_run

    call_command("migrate", verbosity=0)
    in_year = Study.objects.filter(study_date__year=args.year)
    have = in_year.count()
    if have < args.studies and not args.reuse_only:
        t0 = time.perf_counter()
        generate(args.studies - have, args.year, args.ct_events)
        print(f"generated {args.studies - have} synthetic studies in SQL in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    elif have >= args.studies:
        print(f"reusing the {have} studies of {args.year} already in the database", file=sys.stderr)
    # demo studies (generate_demo_data --bulk) count only with include_demo, as drl_report --include-demo
    include_demo = in_year.filter(demo=True).exists()
    with connection.cursor() as cur:  # planner statistics and the visibility map (index-only scans) after a load
        for model in (Study, IrradiationEvent):
            cur.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    n_studies = in_year.count()
    n_demo = in_year.filter(demo=True).count()
    n_events = IrradiationEvent.objects.filter(study__study_date__year=args.year).count()
    print(f"database {args.database}: {n_studies} studies in {args.year} ({n_demo} demo), {n_events} irradiation "
          f"events; include_demo={include_demo}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    times = []
    for attempt in (1, 2, 3):
        timed: list[tuple[float, str]] = []
        t0 = time.perf_counter()
        with connection.execute_wrapper(_timed(timed)):
            run = drl_comparison_run(period_start=dt.date(args.year, 1, 1), period_end=dt.date(args.year, 12, 31),
                                     trigger="yearly", note="bench", include_demo=include_demo)
        elapsed = time.perf_counter() - t0
        times.append(elapsed)
        # the values per acquisition are asked on a second connection, in a thread of drl's: not timed here
        print(f"yearly DRL comparison (run {attempt}): {run.rows.count()} rows, {elapsed:.2f} s, {len(timed)} queries "
              f"on this connection")
        for seconds, sql in sorted(timed, reverse=True)[:args.queries]:
            print(f"    {seconds:6.2f} s  {' '.join(sql.split())[:110]}")
    print(f"yearly DRL comparison: median of 3 runs {statistics.median(times):.2f} s "
          f"(load average {os.getloadavg()[0]:.1f})")


def _timed(timed: list):
    """An execute wrapper that notes each query's time and SQL."""
    def wrapper(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append((time.perf_counter() - t0, sql))
    return wrapper


if __name__ == "__main__":
    main()
