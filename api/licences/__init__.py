"""Licences in the API: the credential QR image and the service-held credential keys."""
