"""The FHIR push to a receiver the test starts (a small FHIR-shaped HTTP endpoint recording the Bundles): one
transaction Bundle per change, retried after a 503."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from dosereg.interop.models import Delivery
from dosereg.interop.push import deliveries_retry_due, interop_after_studies_recorded
from dosereg.registry.models import Study
from tests.interop.test_fhir_resources import import_corpus

pytestmark = [pytest.mark.corpus, pytest.mark.network, pytest.mark.django_db]


class Receiver:
    """POST / with a transaction Bundle: 503 for the first ``unavailable`` requests, then a transaction-response."""

    def __init__(self, unavailable: int = 0):
        self.bundles: list[dict] = []
        self.requests: list[dict] = []
        self.unavailable = unavailable
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append({"content_type": self.headers["Content-Type"], "body": body})
                if len(receiver.requests) <= receiver.unavailable:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bundles.append(body)
                answer = {"resourceType": "Bundle", "type": "transaction-response",
                          "entry": [{"response": {"status": "201 Created"}} for _ in body["entry"]]}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    peer = Receiver(unavailable=1)
    settings.FHIR_BASE_URL, settings.HL7_RIS_HOST = peer.url, ""
    yield peer
    peer.stop()


def test_one_bundle_per_change_retried_after_503(corpus, settings, receiver, tasks_in_process):
    settings.FHIR_BASE_URL = ""
    import_corpus(corpus, "ct/CT-ESR-GE_Optima.dcm")
    settings.FHIR_BASE_URL = receiver.url
    study = Study.objects.get()

    (pk,) = interop_after_studies_recorded([study.pk])
    delivery = Delivery.objects.get(pk=pk)
    assert delivery.state == "pending" and "503" in delivery.last_error and receiver.bundles == []
    deliveries_retry_due(now=timezone.now() + dt.timedelta(minutes=5))
    delivery.refresh_from_db()
    assert delivery.state == "sent" and delivery.attempts == 2
    assert len(receiver.bundles) == 1 and receiver.requests[0]["content_type"] == "application/fhir+json"
    bundle = receiver.bundles[0]
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    observation = bundle["entry"][-1]
    sop = study.reports.order_by("pk").first().sop_instance_uid
    assert observation["request"] == {"method": "PUT",
                                      "url": f"Observation?identifier=urn:dicom:uid|urn:oid:{sop}"}
    assert observation["resource"]["status"] == "final"

    # nothing changed: nothing sent
    assert interop_after_studies_recorded([study.pk]) == []
    assert len(receiver.bundles) == 1

    # a correction: the same Observation (same conditional URL), amended, sent once more
    Study.objects.filter(pk=study.pk).update(dlp_total_mgycm=123.0, flags=["corrected"])
    assert len(interop_after_studies_recorded([study.pk])) == 1
    assert len(receiver.bundles) == 2
    again = receiver.bundles[1]["entry"][-1]
    assert again["request"] == observation["request"] and again["resource"]["status"] == "amended"
    dlp = next(c for c in again["resource"]["component"] if c["code"]["coding"][0]["code"] == "113813")
    assert dlp["valueQuantity"] == {"value": 123.0, "unit": "mGy·cm", "system": "http://unitsofmeasure.org",
                                    "code": "mGy.cm"}


def test_nothing_is_queued_when_not_configured(corpus, settings):
    settings.FHIR_BASE_URL, settings.HL7_RIS_HOST = "", ""
    import_corpus(corpus, "ct/CT-ESR-GE_Optima.dcm")
    assert interop_after_studies_recorded(Study.objects.values_list("pk", flat=True)) == []
    assert not Delivery.objects.exists()


def test_the_pipeline_pushes_new_and_corrected_studies(corpus, settings, receiver, tasks_in_process, tmp_path,
                                                         django_capture_on_commit_callbacks):
    """Through the real ingest path: the post-commit orchestrator queues the push; a corrected re-issue (same
    events, other values, later content time) sends the same Observation again, amended."""
    import pydicom
    from pydicom.uid import generate_uid

    from dicomrx import ingest

    receiver.unavailable = 0
    path = corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm"
    with django_capture_on_commit_callbacks(execute=True):
        first = ingest.import_file(path)
    assert len(receiver.bundles) == 1
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.ContentDate, ds.ContentTime = "20991231", "235959"
    for item in _num_items(ds):
        code = item.ConceptNameCodeSequence[0]
        if (code.CodingSchemeDesignator, code.CodeValue) in (("DCM", "113838"), ("DCM", "113813")):
            mv = item.MeasuredValueSequence[0]
            mv.NumericValue = f"{float(mv.NumericValue) * 0.5:.4f}"
    ds.save_as(tmp_path / "reissue.dcm", enforce_file_format=True)
    with django_capture_on_commit_callbacks(execute=True):
        second = ingest.import_file(tmp_path / "reissue.dcm")
    assert second.status == ingest.CORRECTED and second.study_id == first.study_id
    assert len(receiver.bundles) == 2
    assert receiver.bundles[1]["entry"][-1]["resource"]["status"] == "amended"


def _num_items(ds):
    for item in getattr(ds, "ContentSequence", []):
        if getattr(item, "ValueType", "") == "NUM":
            yield item
        yield from _num_items(item)
