"""Reads of the reward model app: runs and versions, and the dashboard's figures."""
