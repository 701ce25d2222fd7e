"""The demo: a simulated SaaS company's data and the pipeline that runs every stage on it."""
