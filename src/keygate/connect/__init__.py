"""The hosted connect pages and the OAuth callback."""
