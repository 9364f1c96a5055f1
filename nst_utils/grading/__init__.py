"""Grading: the student notebook, the sandboxed autograder with diagnoses, and self-checks."""
