"""Shared neural-network building blocks and counting utilities."""
