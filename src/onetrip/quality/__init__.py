"""Prescription and cost analytics: double ten, ratios, rational use (QA-1..QA-3)."""
