"""Tests of the dose-object parser (dicomrx.parse) and its unit conversion."""
