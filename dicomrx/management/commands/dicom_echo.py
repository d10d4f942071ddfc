"""C-ECHO to a DICOM node, by default our own listener (the compose health check): exit 0 if it answers."""

from __future__ import annotations

from django.conf import settings

from dosereg.registry.management.base import DoseRegCommand, InputFailed


def echo(host: str, port: int, called_ae: str, calling_ae: str, timeout: float = 10.0, tls=None) -> tuple[bool, str]:
    """(answered with Success, a one-line description)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = timeout
    try:
        assoc = ae.associate(host, port, ae_title=called_ae, tls_args=tls)
    except Exception as exc:  # noqa: BLE001 - unreachable host, bad TLS: a failed echo
        return False, f"cannot associate with {called_ae}@{host}:{port}: {type(exc).__name__}"
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "no answer"
        return False, f"association with {called_ae}@{host}:{port} {why}"
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code == 0x0000:
        return True, f"{called_ae}@{host}:{port} answered C-ECHO"
    return False, f"{called_ae}@{host}:{port} C-ECHO status {code!r}"


class Command(DoseRegCommand):
    help = "Send a C-ECHO (default: to our own listener, DOSEREG_AE_TITLE on DOSEREG_DICOM_PORT); exit 0 or 1."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="default: 127.0.0.1 (or DOSEREG_DICOM_BIND if specific)")
        parser.add_argument("--port", type=int, default=None)
        parser.add_argument("--aet", default=None, help="called AE title (default DOSEREG_AE_TITLE)")
        parser.add_argument("--calling-aet", default="DOSEREG_ECHO")
        parser.add_argument("--timeout", type=float, default=10.0)
        parser.add_argument("--quiet", action="store_true", help="print nothing; only the exit status")

    def handle(self, *args, **options):
        bind = settings.DICOM_BIND
        host = options["host"] or ("127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind)
        tls = None
        if settings.DICOM_TLS_CERT and options["host"] is None:
            import ssl

            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=settings.DICOM_TLS_CA or None)
            ctx.check_hostname = False
            if not settings.DICOM_TLS_CA:
                ctx.verify_mode = ssl.CERT_NONE
            else:
                ctx.load_cert_chain(settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY)
            tls = (ctx, None)
        ok, message = echo(host, options["port"] or settings.DICOM_PORT, options["aet"] or settings.DICOM_AE_TITLE,
                           options["calling_aet"], options["timeout"], tls)
        if not ok:
            if options["quiet"]:
                raise SystemExit(1)
            raise InputFailed(message)
        if not options["quiet"]:
            self.stdout.write(message)
