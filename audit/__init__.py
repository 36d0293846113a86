"""Offline verification of the ledger and, later, of receipts. No database or web imports."""
