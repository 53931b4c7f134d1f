"""Shared helpers for the Sluice end-to-end suite (server processes, SigV4, XML, checksums)."""
