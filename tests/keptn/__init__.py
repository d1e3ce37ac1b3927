"""keptn."""
