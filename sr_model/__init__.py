"""sr_model package."""
