"""Payments: bills, fees and tax payables (issue 5). Empty until then."""
