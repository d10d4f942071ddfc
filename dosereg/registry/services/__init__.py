"""Registry services: one function per use case, called by dicomrx, triggers, drl and the web views."""
