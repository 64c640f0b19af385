"""genomorph package."""
