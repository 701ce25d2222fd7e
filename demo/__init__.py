"""Generated datasets: the demo's B2B SaaS portfolio and foreign-shaped exports for acceptance tests."""
