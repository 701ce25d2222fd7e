"""Insights for people (DESIGN §7): diagnosis, closed loop, the explain view and the HTML report."""
