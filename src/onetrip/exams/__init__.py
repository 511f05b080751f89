"""Exams: the catalogue and its preparation rules, exam resources, orders, the one-trip planner."""
