"""Interoperability adapters: FHIR R4 import/export, a read-only FHIR facade over the
registry, and a CDS Hooks 2.0 service.

- ``fhir_import.bundle_to_case``: an R4 Bundle -> ``(Case, warnings)``;
- ``fhir_export.export_bundle``: a case and its evaluation -> an R4 Bundle;
- ``facade.router``: ``/fhir/...`` read endpoints over ``alpsdx.store.Registry``;
- ``cds.router``: ``/cds-services`` (discovery, patient-view, order-select, feedback).

Parsing and validation use the ``fhir.resources`` R4B models (see ``validation.py``).
"""
