"""Linebridge benchmark suite: every scenario measures the bridge and a raw baseline in one run (`make bench`)."""
