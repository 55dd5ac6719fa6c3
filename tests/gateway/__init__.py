"""Tests of the signing gateway (gateway/)."""
