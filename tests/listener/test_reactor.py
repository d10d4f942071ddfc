"""The listener's association threads (``dicomrx.reactor``): woken by what happens instead of polling every
millisecond, with pynetdicom's answers, releases, aborts and timeouts unchanged."""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import time

import pytest
from pynetdicom import AE, build_role
from pynetdicom.sop_class import Verification

from dicomrx import reactor
from tests.conftest import wait_for

pytestmark = [pytest.mark.network]


@pytest.fixture
def acceptor():
    ae = AE(ae_title="REACTOR")
    ae.add_supported_context(Verification)
    server = reactor.serve(ae, ("127.0.0.1", 0))
    yield ae, server
    server.shutdown()


def _associate(port: int):
    scu = AE(ae_title="SCU")
    scu.add_requested_context(Verification)
    assoc = scu.associate("127.0.0.1", port, ae_title="REACTOR")
    assert assoc.is_established
    return assoc


def test_each_answer_is_sent_when_ready_not_at_the_next_look(acceptor):
    ae, server = acceptor
    assoc = _associate(server.server_address[1])
    try:
        assert [type(a) for a in server.active_associations] == [reactor.WakeableAcceptor]
        started = time.monotonic()
        statuses = [assoc.send_c_echo().Status for _ in range(40)]
        elapsed = time.monotonic() - started
    finally:
        assoc.release()
    assert statuses == [0] * 40
    # without the wake-ups each echo would wait for the acceptor's next look and then the DUL's (about WAIT_S
    # together): 40 echoes ~2 s; woken, a few ms each even on a loaded machine
    assert elapsed < 40 * reactor.WAIT_S / 2
    assert wait_for(lambda: not server.active_associations, timeout=5)


def test_another_thread_sends_on_an_acceptor_without_waiting_for_its_next_look():
    """pynetdicom's send_* methods, called on an acceptor from another thread (an SCP that reports or retrieves on
    its own), first wait for the reactor to pause: a reactor waiting for work counts as paused."""
    ae = AE(ae_title="REACTOR")
    ae.add_supported_context(Verification, scu_role=True, scp_role=True)
    server = reactor.serve(ae, ("127.0.0.1", 0))
    scu = AE(ae_title="SCU")
    scu.add_requested_context(Verification)
    assoc = scu.associate("127.0.0.1", server.server_address[1], ae_title="REACTOR",
                          ext_neg=[build_role(Verification, scu_role=True, scp_role=True)])
    try:
        assert assoc.is_established
        assert wait_for(lambda: len(server.active_associations) == 1, timeout=5)
        acceptor = server.active_associations[0]
        took, statuses = [], []
        for _ in range(10):
            time.sleep(0.12)  # the reactor deep in its wait for work
            started = time.monotonic()
            statuses.append(acceptor.send_c_echo().Status)
            took.append(time.monotonic() - started)
    finally:
        assoc.release()
        server.shutdown()
    assert statuses == [0] * 10
    # had each echo waited for the reactor's next look: WAIT_S / 2 more at the median
    assert statistics.median(took) < 0.4 * reactor.WAIT_S


_HOLD = textwrap.dedent("""
    import sys, time
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification
    ae = AE(ae_title="IDLE")
    ae.add_requested_context(Verification)
    held = [ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="REACTOR") for _ in range(4)]
    assert all(a.is_established for a in held)
    print("open", flush=True)
    sys.stdin.readline()
    for a in held:
        a.release()
""")


def test_open_idle_associations_leave_the_cpu_alone(acceptor):
    """Four associations open and silent (held by another process, whose own threads poll): this process's CPU
    over a second.  pynetdicom's loops took about 30 % of a core for four; woken by events, about 1 %."""
    ae, server = acceptor
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(server.server_address[1])], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert wait_for(lambda: len(server.active_associations) == 4, timeout=10)
        time.sleep(0.3)
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(1.5)
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
    finally:
        holder.communicate("\n", timeout=30)
    assert share < 0.10
    assert wait_for(lambda: not server.active_associations, timeout=5)


def test_the_network_timeout_still_ends_a_silent_association(acceptor):
    ae, server = acceptor
    ae.network_timeout = 0.5
    started = time.monotonic()
    assoc = _associate(server.server_address[1])
    assert wait_for(lambda: assoc.is_aborted, timeout=5)  # the acceptor aborts on its idle timer
    assert time.monotonic() - started >= 0.5
    assert wait_for(lambda: not server.active_associations, timeout=5)


def test_a_peer_abort_ends_the_acceptor(acceptor):
    ae, server = acceptor
    assoc = _associate(server.server_address[1])
    assert wait_for(lambda: len(server.active_associations) == 1, timeout=5)
    assoc.abort()
    assert wait_for(lambda: not server.active_associations, timeout=5)


def test_dcmtk_echoscu_is_answered(acceptor):
    """A real peer of another implementation: DCMTK's echoscu associates, echoes and releases."""
    ae, server = acceptor
    if subprocess.run(["which", "echoscu"], capture_output=True).returncode:
        pytest.skip("DCMTK not installed (apt-get install dcmtk)")
    done = subprocess.run(["echoscu", "-aet", "DCMTK", "-aec", "REACTOR", "--repeat", "5", "127.0.0.1",
                           str(server.server_address[1])], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: not server.active_associations, timeout=5)
