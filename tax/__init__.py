"""E-tax: rules as data, returns, invoices, VAT (issues 6 and 7). Empty until then."""
