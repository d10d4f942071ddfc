"""FHIR Radiation Dose Summary, HL7 v2 to and from the RIS: DoseReg speaking the hospital's other languages.

The top layer: reads the registry, never read by it.  DICOM query/retrieve lives with the listener (dicomrx.qr)."""
