"""Licences: renewal and verifiable credentials (issue 8). Empty until then."""
