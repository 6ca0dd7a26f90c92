"""Security primitives of the back end, free of Flask and the database.

passwords: argon2id hashes and the password policy for people who log in.
api_keys: bearer tokens for machine clients, stored only as hashes, and their scopes.
keystore: each organisation's on-chain signing key, encrypted at rest under a master secret.
"""
