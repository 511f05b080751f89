"""FHIR R4 facade: read, search and IHE scheduling operations over the domain services."""
