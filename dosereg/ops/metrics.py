"""Prometheus metrics computed from the database rows, so every web process (and every machine) answers the same.

Counters are counts of rows that are never deleted in normal operation (received objects, refusals, alerts,
deliveries); a purge or restore can make them go down, which Prometheus treats as a counter reset.  Exposition
format: Prometheus text format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone

from dicomrx.models import ListenerStatus, RefusedObject
from dosereg.registry.models import NotificationDelivery, ReceivedObject
from triggers.models import Alert

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Upper bounds (seconds) of the ingest latency histogram: from sub-second embedded ingest to a backlog of minutes.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)

# DIMSE statuses of the listener's refusals (PS3.4 Annex B.2.3) -> a label a dashboard can group by.
REFUSAL_REASONS = {0xA700: "out_of_resources", 0xA900: "sop_class_mismatch", 0xC000: "cannot_understand",
                   0x0122: "sop_class_not_supported"}
ACKNOWLEDGING_SOURCES = ("c-store", "query-retrieve")  # objects DoseReg answered Success to


@dataclass(frozen=True)
class Sample:
    value: float
    labels: tuple[tuple[str, str], ...] = ()
    suffix: str = ""  # "_bucket", "_sum", "_count" of a histogram


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[Sample] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: list[Family]) -> str:
    """The text exposition of ``families`` (pure)."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for s in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels)
            lines.append(f"{family.name}{s.suffix}{{{labels}}} {_number(s.value)}" if labels
                         else f"{family.name}{s.suffix} {_number(s.value)}")
    return "\n".join(lines) + "\n"


def refusal_reason(kind: str, status: int | None) -> str:
    if kind == RefusedObject.KIND_ASSOCIATION:
        return "association_rejected"
    if status is None:
        return "unknown"
    return REFUSAL_REASONS.get(status, f"status_0x{status:04X}")


def histogram_samples(cumulative: list[int], total: int, sum_seconds: float) -> list[Sample]:
    """Histogram samples from cumulative counts per LATENCY_BUCKETS bound (pure)."""
    samples = [Sample(n, (("le", _number(b)),), "_bucket") for b, n in zip(LATENCY_BUCKETS, cumulative, strict=True)]
    samples.append(Sample(total, (("le", "+Inf"),), "_bucket"))
    return samples + [Sample(sum_seconds, (), "_sum"), Sample(total, (), "_count")]


# --- reading the rows ----------------------------------------------------------------------------------------------
def _objects() -> list[Family]:
    by_source = dict(ReceivedObject.objects.values_list("source").annotate(n=Count("pk")).order_by())
    by_state = dict(ReceivedObject.objects.values_list("state").annotate(n=Count("pk")).order_by())
    sources = [s for s, _ in ReceivedObject.SOURCE_CHOICES]
    states = [s for s, _ in ReceivedObject.STATE_CHOICES if s != ReceivedObject.STATE_RECEIVED]
    refused: dict[tuple[str, str], int] = {}
    for kind, status, n in RefusedObject.objects.values_list("kind", "status").annotate(n=Count("pk")).order_by():
        key = ("listener", refusal_reason(kind, status))
        refused[key] = refused.get(key, 0) + n
    refused[("ingest", "rejected")] = by_state.get(ReceivedObject.STATE_REJECTED, 0)
    return [
        Family("dosereg_objects_received_total", "counter", "Objects kept in the inbox, by how they arrived.",
               [Sample(by_source.get(s, 0), (("source", s),)) for s in sources]),
        Family("dosereg_objects_acknowledged_total", "counter",
               "Distinct objects answered Success (C-STORE from a unit, or retrieved from the PACS).",
               [Sample(by_source.get(s, 0), (("source", s),)) for s in ACKNOWLEDGING_SOURCES]),
        Family("dosereg_objects_refused_total", "counter",
               "Objects or associations refused by the listener (DIMSE status) or rejected by ingest.",
               [Sample(n, (("stage", stage), ("reason", reason))) for (stage, reason), n in sorted(refused.items())]),
        Family("dosereg_objects_ingested_total", "counter", "Objects recorded in the registry.",
               [Sample(by_state.get(ReceivedObject.STATE_INGESTED, 0))]),
        Family("dosereg_objects_processed_total", "counter", "Objects ingest has finished with, by outcome.",
               [Sample(by_state.get(s, 0), (("state", s),)) for s in states]),
    ]


def _latency() -> Family:
    latency = ExpressionWrapper(F("processed_at") - F("received_at"), output_field=DurationField())
    rows = ReceivedObject.objects.filter(processed_at__isnull=False).annotate(latency=latency)
    buckets = {f"le{i}": Count("pk", filter=Q(latency__lte=dt.timedelta(seconds=b)))
               for i, b in enumerate(LATENCY_BUCKETS)}
    agg = rows.aggregate(total=Count("pk"), sum=Sum("latency"), **buckets)
    cumulative = [agg[f"le{i}"] for i in range(len(LATENCY_BUCKETS))]
    sum_seconds = agg["sum"].total_seconds() if agg["sum"] is not None else 0.0
    return Family("dosereg_ingest_latency_seconds", "histogram",
                  "Seconds from receipt to the end of ingest, per processed object.",
                  histogram_samples(cumulative, agg["total"], sum_seconds))


def _waiting(now: dt.datetime) -> list[Family]:
    agg = ReceivedObject.objects.filter(state=ReceivedObject.STATE_RECEIVED).aggregate(n=Count("pk"),
                                                                                       oldest=Min("received_at"))
    age = (now - agg["oldest"]).total_seconds() if agg["oldest"] else 0.0
    return [
        Family("dosereg_objects_waiting", "gauge", "Objects received and not yet ingested.", [Sample(agg["n"])]),
        Family("dosereg_objects_waiting_oldest_age_seconds", "gauge",
               "Age of the oldest object waiting for ingest (0 when none waits).", [Sample(max(age, 0.0))]),
    ]


def _alerts_and_mail() -> list[Family]:
    alerts = dict(Alert.objects.filter(demo=False).values_list("severity").annotate(n=Count("pk")).order_by())
    deliveries = dict(NotificationDelivery.objects.values_list("state").annotate(n=Count("pk")).order_by())
    return [
        Family("dosereg_alerts_raised_total", "counter", "Dose alerts raised (demo data left out), by severity.",
               [Sample(n, (("severity", s),)) for s, n in sorted(alerts.items())]),
        Family("dosereg_email_failures_total", "counter", "Notification e-mails given up after their retries.",
               [Sample(deliveries.get("failed", 0))]),
        Family("dosereg_email_deliveries", "gauge", "Notification e-mails by state.",
               [Sample(deliveries.get(s, 0), (("state", s),)) for s, _ in NotificationDelivery.STATE_CHOICES]),
    ]


def _listeners(now: dt.datetime) -> list[Family]:
    running = list(ListenerStatus.objects.filter(stopped_at__isnull=True).order_by("name"))
    return [
        Family("dosereg_listener_heartbeat_age_seconds", "gauge", "Seconds since each running listener's heartbeat.",
               [Sample(max((now - r.heartbeat_at).total_seconds(), 0.0), (("listener", r.name),)) for r in running]),
        Family("dosereg_listener_associations", "gauge", "Open DICOM associations per listener.",
               [Sample(r.active_associations, (("listener", r.name),)) for r in running]),
    ]


def collect(now: dt.datetime | None = None) -> list[Family]:
    now = now or timezone.now()
    return [*_objects(), _latency(), *_waiting(now), *_alerts_and_mail(), *_listeners(now)]
