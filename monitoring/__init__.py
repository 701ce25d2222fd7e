"""Monitoring (DESIGN §6): drift of features and predictions, data quality, matured performance."""
