"""Shared maths and plumbing used by every chapter package. Imports no chapter package."""
