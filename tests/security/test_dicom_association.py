"""A wrong called AE title is refused at association time (A-ASSOCIATE-RJ, called AE title not recognised)."""

from __future__ import annotations

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from dicomrx.listener import Listener

pytestmark = [pytest.mark.network]


@pytest.mark.django_db(transaction=True)
def test_wrong_called_ae_is_rejected():
    listener = Listener(bind="127.0.0.1", port=0, ingest=False)
    listener.start()
    try:
        ae = AE(ae_title="MODALITY1")
        ae.add_requested_context(Verification)
        wrong = ae.associate("127.0.0.1", listener.port, ae_title="NOT-DOSEREG")
        assert wrong.is_rejected and not wrong.is_established
        assert wrong.acceptor.primitive.result_source == 1  # service user
        assert wrong.acceptor.primitive.diagnostic == 7  # called AE title not recognised (PS3.8 Table 9-21)
        right = ae.associate("127.0.0.1", listener.port, ae_title="DOSEREG")
        assert right.is_established
        assert right.send_c_echo().Status == 0
        right.release()
    finally:
        listener.stop()
