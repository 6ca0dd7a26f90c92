"""Anchorline's business rules, in one place for the API, the portal, the CLI and the workers.

Services take an `Actor` (who is acting), check the one authorisation table
(`permissions`), validate, and write the domain change together with its outbox row
(`outbox.enqueue`) and its audit entry (`audit.record`) in one database transaction
(`atomic`). They raise `errors.ServiceError`s and know nothing of HTTP.
"""
