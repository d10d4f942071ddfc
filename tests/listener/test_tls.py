"""The listener with TLS: a TLS client echoes, a plain TCP client does not get in."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from dicomrx.listener import Listener
from tests.conftest import require_program

pytestmark = [pytest.mark.network]


@pytest.mark.django_db(transaction=True)
def test_tls_listener(settings, tmp_path):
    openssl = require_program("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days",
                    "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY, settings.DICOM_TLS_CA = str(cert), str(key), ""
    listener = Listener(bind="127.0.0.1", port=0, ingest=False)
    listener.start()
    try:
        ae = AE(ae_title="TLSSCU")
        ae.add_requested_context(Verification)
        ae.acse_timeout = ae.network_timeout = 5
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        ctx.check_hostname = False
        assoc = ae.associate("127.0.0.1", listener.port, ae_title="DOSEREG", tls_args=(ctx, None))
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        plain = ae.associate("127.0.0.1", listener.port, ae_title="DOSEREG")
        assert not plain.is_established
    finally:
        listener.stop()
