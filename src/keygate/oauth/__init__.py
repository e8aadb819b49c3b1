"""OAuth 2.0 protocol steps as plain functions, and the token lifecycle."""
