"""The database: stage, decide the database rules, insert, and keep the ledger."""
